"""Provisions the local emulator from infra/template.yaml.

The stack is created through the emulator's CloudFormation, from the same
template that describes AWS. What that CloudFormation skips and the local
pipeline relies on (bucket notifications, versioning and CORS rules, SES
identities and configuration sets, table TTLs) is applied here from the template's own values, never from a
second list. The environment the template gives the functions, plus which
queue feeds which function, is written to an env file for the local runner,
the tests and `cargo lambda`.

The rest of what the emulator skips is left out, as nothing local acts on
it: the functions and the HTTP API (the local runner calls the handlers),
alarms, the dashboard and the alarm topic's email subscription, SES's
event destinations, lifecycle rules, public
access block and ownership controls, point in time recovery. The bucket
policy is left out on purpose: it denies requests not made over TLS, and the
emulator speaks plain HTTP on loopback. (Roles, log groups and the key are
created by the emulator, which does not enforce IAM.)

Usage: provision.py TEMPLATE ENV_FILE [Prefix=... AllowedOrigins=...]
"""

import re
import sys
import time

import boto3
import yaml

STACK = "loyalty-local"

# `!Ref AWS::NoValue`: the property is left out.
NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, !If...)."""


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


CfnLoader.add_constructor("!Ref", _tag("Ref"))
CfnLoader.add_constructor("!Condition", _tag("Condition"))
for _function in ["And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If",
                  "ImportValue", "Join", "Not", "Or", "Select", "Split", "Sub", "Transform"]:
    CfnLoader.add_constructor(f"!{_function}", _tag(f"Fn::{_function}"))


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
            if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
                break
            if "FAILED" in status or "ROLLBACK" in status:
                reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                           for e in self.cfn.describe_stack_events(StackName=STACK)["StackEvents"]
                           if "FAILED" in e.get("ResourceStatus", "")]
                sys.exit(f"stack {STACK}: {status}\n" + "\n".join(reasons))
            time.sleep(0.5)
        else:
            sys.exit(f"stack {STACK} did not finish creating ({status})")
        self.load()

    def load(self):
        """Reads the physical ids of the stack's resources."""
        for r in self.cfn.describe_stack_resources(StackName=STACK)["StackResources"]:
            # Resources the emulator skipped are listed without ids.
            if r.get("LogicalResourceId") and r.get("PhysicalResourceId"):
                self.physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]

    def resources(self):
        """The template's resources that exist with these parameters (their
        `Condition`, if any, holds)."""
        for logical, resource in self.template["Resources"].items():
            if "Condition" not in resource or self.condition(resource["Condition"]):
                yield logical, resource

    def condition(self, name):
        return self.holds(self.template.get("Conditions", {})[name])

    def holds(self, expression):
        """Evaluates a condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
        if isinstance(expression, bool):
            return expression
        (function, argument), = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.holds(argument[0])
        if function == "Fn::And":
            return all(self.holds(a) for a in argument)
        if function == "Fn::Or":
            return any(self.holds(a) for a in argument)
        raise SystemExit(f"condition {function} is not supported locally")

    def resolve(self, value):
        """Evaluates the intrinsic functions in a template value: Ref, Fn::GetAtt,
        Fn::Sub, Fn::If, Fn::Join, Fn::Select, Fn::Split."""
        if isinstance(value, list):
            items = (self.resolve(v) for v in value)
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical, self.resolve(attribute))
            if function == "Fn::Sub":
                return self.sub(argument)
            if function == "Fn::If":
                condition, if_true, if_false = argument
                return self.resolve(if_true if self.condition(condition) else if_false)
            if function == "Fn::Join":
                separator, items = argument
                return self.resolve(separator).join(str(i) for i in self.resolve(items))
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if function == "Fn::Split":
                separator, text = argument
                return self.resolve(text).split(self.resolve(separator))
            if function.startswith("Fn::"):
                raise SystemExit(f"{function} is not supported locally")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def sub(self, argument):
        """Fn::Sub: `${Name}` (a parameter, pseudo parameter or resource),
        `${Resource.Attribute}`, the form with a variable map, `${!Literal}`."""
        text, variables = argument if isinstance(argument, list) else (argument, {})
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def ref(self, name):
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return self.parameters[name].split(",")
            return self.parameters[name]
        resource = self.template["Resources"][name]
        if resource["Type"] == "AWS::SQS::Queue":
            return self.queue_url(name)
        # Created by apply_skipped under the name the template gives it.
        if resource["Type"] == "AWS::SES::ConfigurationSet" and name not in self.physical:
            return self.resolve(resource["Properties"]["Name"])
        if name not in self.physical:
            raise SystemExit(f"{name} ({resource['Type']}) is not created by the emulator")
        return self.physical[name]

    def queue_url(self, logical):
        queue_name = self.resolve(self.template["Resources"][logical]["Properties"]["QueueName"])
        return self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]

    def get_att(self, logical, attribute):
        kind = self.template["Resources"][logical]["Type"]
        if kind == "AWS::SQS::Queue":
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(logical), AttributeNames=["QueueArn"])
            arn = attrs["Attributes"]["QueueArn"]
            return {"Arn": arn, "QueueName": arn.rsplit(":", 1)[1], "QueueUrl": self.queue_url(logical)}[attribute]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.ref(logical)}"
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return boto3.client("dynamodb").describe_table(TableName=self.ref(logical))["Table"]["TableArn"]
        raise SystemExit(f"GetAtt {logical}.{attribute} is not supported locally")


def apply_skipped(stack):
    """Applies, from the template, what the emulator's CloudFormation leaves
    out and the local pipeline relies on."""
    s3, ses, dynamodb = boto3.client("s3"), boto3.client("ses"), boto3.client("dynamodb")
    sesv2 = boto3.client("sesv2")
    for logical, resource in stack.resources():
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
            if "CorsConfiguration" in props:
                s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors_configuration(
                    stack.resolve(props["CorsConfiguration"])))
        elif kind == "AWS::SES::EmailIdentity":
            ses.verify_email_identity(EmailAddress=stack.resolve(props["EmailIdentity"]))
        elif kind == "AWS::SES::ConfigurationSet":
            name = stack.resolve(props["Name"])
            existing = sesv2.list_configuration_sets().get("ConfigurationSets", [])
            if name not in existing:
                sesv2.create_configuration_set(ConfigurationSetName=name)
        elif kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
            table = stack.ref(logical)
            ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") != "ENABLED":
                dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=stack.resolve(props["TimeToLiveSpecification"]))


def cors_configuration(template_value):
    """A bucket's CORS rules, from the template's names to the S3 API's."""
    names = {"Id": "ID", "AllowedMethods": "AllowedMethods", "AllowedOrigins": "AllowedOrigins",
             "AllowedHeaders": "AllowedHeaders", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return {"CORSRules": [{names[k]: v for k, v in rule.items()} for rule in template_value["CorsRules"]]}


def environment(stack):
    """The functions' environment, and which queue feeds each function
    (`LOCAL_QUEUE_<FUNCTION>_<EVENT>`, from the functions' SQS events) with
    how many messages at a time (`LOCAL_BATCH_SIZE_<FUNCTION>_<EVENT>`)."""
    variables = stack.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"])
    # The api function's own too: `loyalty-local serve` runs it.
    api = stack.template["Resources"]["ApiFunction"]["Properties"]
    variables.update(stack.resolve(api.get("Environment", {}).get("Variables", {})))
    for logical, resource in stack.resources():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function = logical.removesuffix("Function").upper()
        for name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                queue_logical = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                variables[f"LOCAL_QUEUE_{function}_{name.upper()}"] = stack.queue_url(queue_logical)
                # Lambda's default for an SQS event source is 10.
                batch_size = event["Properties"].get("BatchSize", 10)
                variables[f"LOCAL_BATCH_SIZE_{function}_{name.upper()}"] = str(batch_size)
    return variables


def main():
    template_path, env_path, *overrides = sys.argv[1:]
    body = open(template_path, encoding="utf-8").read()
    template = yaml.load(body, Loader=CfnLoader)
    # Parameter values are strings, as CloudFormation takes them (a Number's
    # default is read from YAML as a number).
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
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
