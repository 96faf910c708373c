"""Provisions the local emulator from infra/template.yaml.

The stack is created through the emulator's CloudFormation, from the same
template that describes AWS. What that CloudFormation skips (functions, bucket
notifications and versioning, SES identities, table TTLs) is applied here from
the template's own values, never from a second list. The environment the
template gives the functions, plus which queue feeds which function, is
written to an env file for the local runner, the tests and `cargo lambda`.

Usage: provision.py TEMPLATE ENV_FILE [Prefix=... SenderEmail=...]
"""

import sys
import time

import boto3
import yaml

STACK = "loyalty-local"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub)."""


def _tag(name):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for tag, name in [("!Ref", "Ref"), ("!GetAtt", "Fn::GetAtt"), ("!Sub", "Fn::Sub")]:
    CfnLoader.add_constructor(tag, _tag(name))


class Stack:
    def __init__(self, template, parameters):
        self.template = template
        self.parameters = parameters
        self.cfn = boto3.client("cloudformation")
        self.sqs = boto3.client("sqs")
        self.account = boto3.client("sts").get_caller_identity()["Account"]
        self.region = boto3.session.Session().region_name
        self.physical = {}

    def create(self, body):
        names = [s["StackName"] for s in self.cfn.list_stacks()["StackSummaries"]
                 if s["StackStatus"] != "DELETE_COMPLETE"]
        if STACK not in names:
            self.cfn.create_stack(
                StackName=STACK,
                TemplateBody=body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        for _ in range(120):
            status = self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
            if status.endswith("_COMPLETE"):
                break
            time.sleep(0.5)
        else:
            sys.exit(f"stack {STACK} did not finish creating ({status})")
        for r in self.cfn.describe_stack_resources(StackName=STACK)["StackResources"]:
            # Resources the emulator skipped are listed without ids.
            if r.get("LogicalResourceId") and r.get("PhysicalResourceId"):
                self.physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]

    def resolve(self, value):
        """Evaluates the intrinsic functions this template uses."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return self.get_att(logical, attribute)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name in list(self.parameters) + ["AWS::AccountId", "AWS::Region", "AWS::Partition"]:
                text = text.replace("${" + name + "}", str(self.ref(name)))
            return text
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name):
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.template["Resources"][name]
        if resource["Type"] == "AWS::SQS::Queue":
            return self.queue_url(name)
        return self.physical[name]

    def queue_url(self, logical):
        queue_name = self.resolve(self.template["Resources"][logical]["Properties"]["QueueName"])
        return self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]

    def get_att(self, logical, attribute):
        if self.template["Resources"][logical]["Type"] == "AWS::SQS::Queue":
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(logical), AttributeNames=["QueueArn"])
            return {"Arn": attrs["Attributes"]["QueueArn"],
                    "QueueName": attrs["Attributes"]["QueueArn"].rsplit(":", 1)[1]}[attribute]
        raise SystemExit(f"GetAtt {logical}.{attribute} is not supported locally")


def apply_skipped(stack):
    """Applies, from the template, what the emulator's CloudFormation leaves out."""
    s3, ses, dynamodb = boto3.client("s3"), boto3.client("ses"), boto3.client("dynamodb")
    for logical, resource in stack.template["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::S3::Bucket":
            bucket = stack.ref(logical)
            if "VersioningConfiguration" in props:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=stack.resolve(props["VersioningConfiguration"]))
            notification = props.get("NotificationConfiguration", {})
            queues = []
            for config in stack.resolve(notification.get("QueueConfigurations", [])):
                entry = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
                rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
                if rules:
                    entry["Filter"] = {"Key": {"FilterRules": rules}}
                queues.append(entry)
            if queues:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues})
        elif kind == "AWS::SES::EmailIdentity":
            ses.verify_email_identity(EmailAddress=stack.resolve(props["EmailIdentity"]))
        elif kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
            table = stack.ref(logical)
            ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") != "ENABLED":
                dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=stack.resolve(props["TimeToLiveSpecification"]))


def environment(stack):
    """The functions' environment, and which queue feeds each function
    (`LOCAL_QUEUE_<FUNCTION>_<EVENT>`, from the functions' SQS events)."""
    variables = stack.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"])
    for logical, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function = logical.removesuffix("Function").upper()
        for name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                queue_logical = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                variables[f"LOCAL_QUEUE_{function}_{name.upper()}"] = stack.queue_url(queue_logical)
    return variables


def main():
    template_path, env_path, *overrides = sys.argv[1:]
    body = open(template_path, encoding="utf-8").read()
    template = yaml.load(body, Loader=CfnLoader)
    parameters = {k: v.get("Default", "") for k, v in template.get("Parameters", {}).items()}
    parameters.update(dict(o.split("=", 1) for o in overrides))
    stack = Stack(template, parameters)
    stack.create(body)
    apply_skipped(stack)
    variables = environment(stack)
    with open(env_path, "w", encoding="utf-8") as out:
        for name, value in sorted(variables.items()):
            out.write(f"{name}={value}\n")
    print(f"provisioned stack {STACK}: {len(stack.physical)} resources; environment in {env_path}")


if __name__ == "__main__":
    main()
