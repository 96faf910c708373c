"""Runs moto server for the local stack, with four fixes to moto itself.

1. Moto records every model instance it ever creates (each S3 object version,
   SQS message, DynamoDB item...) for its dashboard and `/moto-api/data.json`.
   Over a long test run that list grows without bound: gigabytes of memory,
   and data.json, which the tests read sent emails from, takes minutes. Only
   SES's records (the sent emails) are kept here.
2. Moto's DynamoDB serves requests on several threads without isolation: a
   transaction that is cancelled restores whole tables from a copy taken
   before it ran, erasing what other requests wrote meanwhile (an item
   written and acknowledged then disappears). Real DynamoDB transactions are
   isolated. Here DynamoDB requests run one at a time.
3. That copy is of every table the transaction touches, on every
   transaction: its cost grows with the tables. Here a cancelled transaction
   undoes only the items it wrote.
4. A FIFO queue must not hand out a message while an earlier one of its
   group is in flight. When several messages of a group became visible again
   at once (a consumer handed them back), moto could hand out the second
   before the first, out of order. Here a receive first ends the in-flight
   state of every message whose visibility timeout is over, and SQS requests
   run one at a time (the stack never long-polls, so none waits inside).

Usage: the same arguments as moto_server (infra/local/dev starts it).
"""
import copy
import functools
import sys
import threading

from moto.core import common_models
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.comparisons import get_filter_expression
from moto.sqs.models import SQSBackend


def _new(cls, *args, **kwargs):
    instance = object.__new__(cls)
    if cls.__module__.startswith("moto.ses."):
        cls.instances_tracked.append(instance)
    return instance


common_models.BaseModel.__new__ = _new


def transact_write_items(self, transact_items):
    """moto's transact_write_items, undoing only the items written when it is cancelled."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    written = []  # (table, key, item before), in order
    targets = set()
    errors = []

    def undo():
        for table_name, key, before in reversed(written):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])

    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            current = self.get_item(table_name, key)
            original = None
            if condition is not None:
                if not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original)
            if op_type != "ConditionCheck":
                written.append((table_name, key, copy.deepcopy(current)))
            # The condition held just now, and no other request runs in
            # between (see 2.): it is not parsed and evaluated a second time.
            if op_type == "Put":
                self.put_item(table_name, op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original))
        except Exception as e:  # noqa: BLE001 - reported per item, as moto does
            errors.append((type(e).__name__, str(e), None))
    if any(code is not None for code, _, _ in errors):
        undo()
        raise TransactionCanceledException(errors)


DynamoDBBackend.transact_write_items = transact_write_items

_receive_message = SQSBackend.receive_message


def receive_message(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    for message in list(queue.pending_messages):
        if message.visible:
            queue.pending_messages.remove(message)
    return _receive_message(self, queue_name, *args, **kwargs)


SQSBackend.receive_message = receive_message


def _one_at_a_time(backend):
    lock = threading.RLock()

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)

        return run

    for name, member in list(vars(backend).items()):
        if callable(member) and not name.startswith("_"):
            setattr(backend, name, wrap(member))


_one_at_a_time(DynamoDBBackend)
_one_at_a_time(SQSBackend)

from moto.server import main  # noqa: E402  (after the patches, so every request uses them)

if __name__ == "__main__":
    sys.exit(main())
