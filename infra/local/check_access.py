"""Checks each function's role in the template against what the function
really did: every access recorded while the functions ran on the emulator
(`loyalty_aws::access`, by tests/tests/least_privilege.rs) must be allowed
by a statement of that function's role, resolved against the provisioned
stack; grants that no recorded access used are listed, action by action
(some serve Lambda itself: reading a function's queue, writing its logs;
others paths the test does not take).

Usage: check_access.py TEMPLATE ACCESSES_JSON
  ACCESSES_JSON: {"SplitterFunction": ["dynamodb:GetItem table/<name>", ...], ...}
Exits 1 if any access is not allowed.
"""

import fnmatch
import json
import os
import sys

import boto3
import yaml

from provision import STACK, CfnLoader, Stack


def listify(value):
    return value if isinstance(value, list) else [value]


class Roles:
    def __init__(self, template_path):
        body = open(template_path, encoding="utf-8").read()
        self.template = yaml.load(body, Loader=CfnLoader)
        cfn = boto3.client("cloudformation")
        parameters = {p["ParameterKey"]: p["ParameterValue"]
                      for p in cfn.describe_stacks(StackName=STACK)["Stacks"][0].get("Parameters", [])}
        self.stack = Stack(self.template, parameters)
        self.stack.load()

    def arn(self, resource):
        kind, _, name = resource.partition("/")
        region, account = self.stack.region, self.stack.account
        return {
            "table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "object": f"arn:aws:s3:::{name}",
            "bucket": f"arn:aws:s3:::{name}",
            "queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "from": f"arn:aws:ses:{region}:{account}:identity/{name}",
            "configuration-set": f"arn:aws:ses:{region}:{account}:configuration-set/{name}",
        }.get(kind, resource)

    def statements(self, function):
        role = self.template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
        for policy in self.template["Resources"][role]["Properties"].get("Policies", []):
            for statement in listify(policy["PolicyDocument"]["Statement"]):
                yield statement

    def resources(self, statement):
        try:
            return listify(self.stack.resolve(statement.get("Resource", [])))
        except SystemExit:
            return []  # a resource the emulator does not create (log groups, keys)

    def allows(self, statement, action, arn, context):
        if statement.get("Effect") != "Allow":
            return False
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in listify(statement["Action"])):
            return False
        if not any(fnmatch.fnmatchcase(arn, r) for r in self.resources(statement)):
            return False
        for operator, keys in statement.get("Condition", {}).items():
            for key, expected in self.stack.resolve(keys).items():
                value = context.get(key)
                if value is None:
                    return False
                if operator == "StringEquals" and value not in listify(expected):
                    return False
                if operator == "StringLike" and not any(fnmatch.fnmatchcase(value, e) for e in listify(expected)):
                    return False
                if operator not in ("StringEquals", "StringLike"):
                    return False
        return True


def main():
    template_path, accesses_path = sys.argv[1:]
    # The functions' environment names the region as the Rust SDK reads it.
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    roles = Roles(template_path)
    recorded = json.load(open(accesses_path, encoding="utf-8"))
    denied = 0
    for function, accesses in sorted(recorded.items()):
        statements = list(roles.statements(function))
        used = set()
        refused = []
        for access in accesses:
            action, resource = access.split(" ", 1)
            arn = roles.arn(resource)
            context = {"ses:FromAddress": resource.partition("/")[2]} if resource.startswith("from/") else {}
            allowing = [i for i, s in enumerate(statements) if roles.allows(s, action, arn, context)]
            used.update((i, granted) for i in allowing for granted in listify(statements[i]["Action"])
                        if fnmatch.fnmatchcase(action.lower(), granted.lower()))
            if not allowing:
                refused.append(f"{action} on {arn}")
        denied += len(refused)
        print(f"{function}: {len(accesses)} accesses, {len(accesses) - len(refused)} allowed")
        for line in refused:
            print(f"  NOT ALLOWED: {line}")
        for i, statement in enumerate(statements):
            idle = [a for a in listify(statement["Action"]) if (i, a) not in used]
            if idle:
                print(f"  not exercised: {statement.get('Sid', i)}: {', '.join(idle)}")
    sys.exit(1 if denied else 0)


if __name__ == "__main__":
    main()
