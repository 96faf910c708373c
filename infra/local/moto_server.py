"""Runs moto server for the local stack, with eleven fixes to moto itself.

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
5. DynamoDB refuses an item over 400 KiB (409,600 bytes) by its own measure:
   each attribute's UTF-8 name plus its value; a string its UTF-8 bytes, a
   binary its bytes, a number 1 byte per two significant digits plus 1, a
   boolean or null 1, a set its members, a list or map 3 bytes plus 1 per
   element plus the elements (and a map's names). Moto checked only when a
   top-level attribute was set, against 405,000, counting a number by its
   characters, no list or map overhead and a replaced attribute twice: it
   stored items DynamoDB refuses (one grown through a nested path) and
   refused updates DynamoDB takes. Here a PutItem,
   a BatchWriteItem with such a put, and a transaction with such a Put are
   refused whole, before any write ("Item size has exceeded the maximum
   allowed size"). An update is measured on the item it would leave: an
   UpdateItem is refused ("Item size to update has exceeded the maximum
   allowed size") and leaves the item as it was; in a transaction, the
   transaction is cancelled with that message as the update's ValidationError.
6. A transaction's items may total at most 4 MiB, counted as: a Put its item,
   an Update its key and ExpressionAttributeValues (what it can write), a
   Delete or ConditionCheck its key. Moto had no such limit. A larger one is
   refused whole, before any write, with a ValidationException.
7. A Query of a table (not an index) read every item of the table and
   sorted them all, then kept its key's: a job's outcomes, read a thousand at
   a time, cost the whole outcomes table (every job's) per request, so a
   job of a few hundred thousand rows took minutes to read back. Here a
   Query reads its partition only, kept sorted as items are put and
   deleted, from the first key its condition allows: what DynamoDB does (a
   query costs what it reads).
8. S3's ListParts answered `<ListPartsResponse>`; S3 (and so the AWS SDK)
   names its root element `<ListPartsResult>`, and the SDK refused the
   answer. Here it is named as S3 names it.

9. Moto writes every answer through a general serializer that walks the
   operation's model, member by member: for DynamoDB's item operations over
   half its time went there (a Query of a thousand outcomes spent more
   time being written out than being answered). Their answers are DynamoDB
   JSON already, so they are written with `json.dumps` (binaries as base64,
   times as epoch seconds, as the serializer writes them); any other answer,
   or one that is not plain JSON, goes through the serializer as before.

10. S3's notifications named neither the object's version nor a
   sequencer. S3 names the version in a versioned bucket, and the splitter
   imports the version an event names: without it, two uploads to one key
   before the splitter read the first event both resolved to the second,
   and the first was never imported. Here each event names its version and
   a sequencer that grows with every event, as S3's do for one key.

11. SES's SendEmail (API v1, and v2's, which the functions use and moto
   hands to v1's backend) kept one part of a message: its HTML part if it
   had one, else its text part. Here a sent email keeps both: `body` is the
   text part, `html` the HTML part (in `/moto-api/data.json`).

Usage: the same arguments as moto_server (infra/local/dev starts it).
"""
import base64
import bisect
import copy
import datetime
import decimal
import functools
import itertools
import json
import sys
import threading

from moto.core import common_models
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.responses import DynamoHandler
from moto.s3 import notifications as s3_notifications
from moto.s3.responses import S3Response
from moto.ses.responses import EmailResponse
from moto.sesv2.responses import SESV2Response
from moto.sqs.models import SQSBackend


def _new(cls, *args, **kwargs):
    instance = object.__new__(cls)
    if cls.__module__.startswith("moto.ses."):
        cls.instances_tracked.append(instance)
    return instance


common_models.BaseModel.__new__ = _new


MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


def item_size(attributes):
    """An item's size by DynamoDB's rules (see 5.), from request JSON or moto's DynamoTypes."""
    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


def value_size(value):
    if isinstance(value, DynamoType):
        kind, v = value.type, value.value
    else:
        kind, v = next(iter(value.items()), (None, None))
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return _binary_size(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_number_size(n) for n in v)
    if kind == "BS":
        return sum(_binary_size(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(e) for name, e in v.items())
    return 0  # not a value: moto answers for that


def _number_size(text):
    significant = text.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0")
    return (len(significant) + 1) // 2 + 1


def _binary_size(value):
    # Moto keeps a binary as given: its bytes, or the request's base64.
    return len(value) if isinstance(value, bytes) else len(base64.b64decode(value))


def _transaction_bytes(op_type, op):
    """What an action of a transaction counts towards its 4 MiB (see 6.)."""
    if op_type == "Put":
        return item_size(op.get("Item", {}))
    size = item_size(op.get("Key", {}))
    if op_type == "Update":
        size += sum(value_size(v) for v in (op.get("ExpressionAttributeValues") or {}).values())
    return size


# Moto's own size check (see 5.) is replaced by the checks below.
LimitedSizeDict.__setitem__ = dict.__setitem__


def _restore(backend, table_name, key, before):
    """Puts back the item as it was before a write (None: there was none)."""
    if before is None:
        backend.delete_item(table_name, key)
    else:
        backend.put_item(table_name, before.to_json()["Attributes"])


_put_item = DynamoDBBackend.put_item
_update_item = DynamoDBBackend.update_item
_batch_write_item = DynamoHandler.batch_write_item


def put_item(self, table_name, item_attrs, *args, **kwargs):
    if item_size(item_attrs) > MAX_ITEM_BYTES:
        raise ItemSizeTooLarge()
    return _put_item(self, table_name, item_attrs, *args, **kwargs)


def update_item(self, table_name, key, *args, **kwargs):
    """moto's update_item, refusing (and undoing) an update that leaves the item too large."""
    before = copy.deepcopy(self.get_item(table_name, key))
    try:
        item = _update_item(self, table_name, key, *args, **kwargs)
        if item_size(item.attrs) > MAX_ITEM_BYTES:
            raise ItemSizeToUpdateTooLarge()
        return item
    except Exception:
        # moto updates the stored item in place, and creates it first when
        # there is none: a refused update must leave nothing of that behind.
        _restore(self, table_name, key, before)
        raise


def batch_write_item(self):
    for requests in self.body["RequestItems"].values():
        for request in requests:
            put = request.get("PutRequest")
            if put is not None and item_size(put["Item"]) > MAX_ITEM_BYTES:
                raise ItemSizeTooLarge()
    return _batch_write_item(self)


DynamoDBBackend.put_item = put_item
DynamoDBBackend.update_item = update_item
DynamoHandler.batch_write_item = batch_write_item


def transact_write_items(self, transact_items):
    """moto's transact_write_items, undoing only the items written when it is cancelled."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    actions = [action for entry in transact_items for action in entry.items()]
    # Both limits are known from the request alone: refused before any write.
    for op_type, op in actions:
        if op_type == "Put" and item_size(op.get("Item", {})) > MAX_ITEM_BYTES:
            raise ItemSizeTooLarge()
    if sum(_transaction_bytes(op_type, op) for op_type, op in actions) > MAX_TRANSACTION_BYTES:
        raise MockValidationException("Transaction request cannot be larger than 4 MB")
    written = []  # (table, key, item before), in order
    targets = set()
    errors = []

    def undo():
        for table_name, key, before in reversed(written):
            _restore(self, table_name, key, before)

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
        except ItemSizeToUpdateTooLarge as e:
            errors.append(("ValidationError", e.exception_msg, None))
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


_table_put_item = Table.put_item
_table_delete_item = Table.delete_item
_table_query = Table.query


def _sorted_partitions(table):
    """The table's partitions sorted by range key, once read (kept sorted as
    items are put and deleted)."""
    return table.__dict__.setdefault("_sorted_partitions", {})


def _range_key(item):
    return item.range_key


def table_put_item(self, item_attrs, *args, **kwargs):
    cache = _sorted_partitions(self)
    hash_key = None
    if self.hash_key_attr in item_attrs:
        hash_key = DynamoType(item_attrs[self.hash_key_attr])
    # Out of the cache while the put runs: a put refused leaves it out.
    entry = cache.pop(hash_key, None)
    item = _table_put_item(self, item_attrs, *args, **kwargs)
    if entry is not None and self.range_key_attr:
        at = bisect.bisect_left(entry, item.range_key, key=_range_key)
        if at < len(entry) and entry[at].range_key == item.range_key:
            entry[at] = item
        else:
            entry.insert(at, item)
        cache[hash_key] = entry
    return item


def table_delete_item(self, hash_key, range_key):
    cache = _sorted_partitions(self)
    entry = cache.pop(hash_key, None)
    item = _table_delete_item(self, hash_key, range_key)
    if entry is not None and range_key is not None:
        at = bisect.bisect_left(entry, range_key, key=_range_key)
        if item is not None and at < len(entry) and entry[at].range_key == range_key:
            del entry[at]
        cache[hash_key] = entry
    return item


# Conditions with a lower bound on the range key: the first key they allow.
_FROM_FIRST = {"BETWEEN", ">=", "GE", "=", "EQ", "BEGINS_WITH"}
_AFTER_FIRST = {">", "GT"}


def table_query(self, hash_key, range_comparison, range_objs, limit,
                exclusive_start_key, scan_index_forward, *args, **kwargs):
    index_name = args[1] if len(args) > 1 else kwargs.get("index_name")
    if (index_name or not self.range_key_attr or hash_key is None
            or scan_index_forward is False):
        return _table_query(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, *args, **kwargs)
    partition = self.items.get(hash_key, {})
    cache = _sorted_partitions(self)
    entry = cache.get(hash_key)
    if entry is None or len(entry) != len(partition):
        entry = sorted(partition.values(), key=_range_key)
        cache[hash_key] = entry
    start = 0
    if range_comparison in _FROM_FIRST:
        start = bisect.bisect_left(entry, range_objs[0], key=_range_key)
    elif range_comparison in _AFTER_FIRST:
        start = bisect.bisect_right(entry, range_objs[0], key=_range_key)
    # One item past the limit tells moto there is more (its LastEvaluatedKey);
    # after an exclusive start key, moto skips to it itself.
    end = None if limit is None or exclusive_start_key else start + limit + 1
    candidates = entry[start:end]
    self.all_items = lambda: candidates
    try:
        return _table_query(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, *args, **kwargs)
    finally:
        del self.all_items


Table.put_item = table_put_item
Table.delete_item = table_delete_item
Table.query = table_query


_list_parts = S3Response.list_parts


def list_parts(self, *args, **kwargs):
    status, headers, body = _list_parts(self, *args, **kwargs)
    if isinstance(body, str):
        body = body.encode()
    body = body.replace(b"<ListPartsResponse", b"<ListPartsResult", 1)
    body = body.replace(b"</ListPartsResponse>", b"</ListPartsResult>", 1)
    return status, headers, body


S3Response.list_parts = list_parts


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

# 9. DynamoDB's item answers as plain JSON (see the docstring).
ITEM_OPERATIONS = {
    "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "PutItem",
    "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
}
_execute_result = ActionResult.execute_result


def _json_value(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def execute_result(self, context):
    if (
        context.service_model.service_name == "dynamodb"
        and context.operation_model.name in ITEM_OPERATIONS
        and isinstance(self.result, dict)
    ):
        result = {k: v for k, v in self.result.items() if v is not None}
        try:
            body = json.dumps(result, separators=(",", ":"), default=_json_value)
        except TypeError:
            return _execute_result(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return _execute_result(self, context)


ActionResult.execute_result = execute_result


# 10. S3 notifications name the object's version and order its events.
_get_s3_event = s3_notifications._get_s3_event
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def get_s3_event(event_name, bucket, key, notification_id):
    event = _get_s3_event(event_name, bucket, key, notification_id)
    with _sequence_lock:
        sequencer = f"{next(_sequence):016X}"
    for record in event["Records"]:
        entry = record["s3"]["object"]
        if key.version_id and key.version_id != "null":
            entry["versionId"] = key.version_id
        entry["sequencer"] = sequencer
    return event


s3_notifications._get_s3_event = get_s3_event


# 11. A sent email keeps its text and its HTML part.
def send_email(self):
    message = self.backend.send_email(
        self._get_param("Source"),
        self._get_param("Message.Subject.Data"),
        self._get_param("Message.Body.Text.Data"),
        self._get_param("Destination", {}),
    )
    message.html = self._get_param("Message.Body.Html.Data")
    return ActionResult({"MessageId": message.id})


EmailResponse.send_email = send_email


def send_email_v2(self):
    params = json.loads(self.body)
    simple = params.get("Content", {}).get("Simple")
    if simple is None:
        return original_send_email_v2(self)
    body = simple.get("Body", {})
    message = self.sesv2_backend.send_email(
        source=params.get("FromEmailAddress"),
        destinations=params.get("Destination", {}),
        subject=simple["Subject"]["Data"],
        body=body.get("Text", {}).get("Data"),
    )
    message.html = body.get("Html", {}).get("Data")
    return json.dumps({"MessageId": message.id})


original_send_email_v2 = SESV2Response.send_email
SESV2Response.send_email = send_email_v2

from moto.server import main  # noqa: E402  (after the patches, so every request uses them)

if __name__ == "__main__":
    sys.exit(main())
