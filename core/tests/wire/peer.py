"""The other side of tests/wire.rs: Google's protobuf runtime, loaded with descriptors that protoc
compiled from the rpc.proto libcriu-dev ships. It knows nothing of ckpt's prost structs.

Usage: peer.py DESCRIPTOR_SET COMMAND ...
  sample MESSAGE OUT_FULL OUT_ZERO   write two messages with every field set (repeated ones
                                     twice): one with distinct non-default values, one with
                                     zero values (false, 0, "", the enum's first value)
  same MESSAGE EXPECTED ACTUAL       compare two encodings field by field; exit 1 on a difference
  text MESSAGE FILE                  print the message in protobuf text format
"""

import sys

from google.protobuf import descriptor_pb2, descriptor_pool, text_format
from google.protobuf.descriptor import FieldDescriptor as FD

try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:  # protobuf < 4.21.? spells it through a factory
    from google.protobuf.message_factory import MessageFactory

    def GetMessageClass(desc):
        return MessageFactory(desc.file.pool).GetPrototype(desc)


def load(path, name):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return GetMessageClass(pool.FindMessageTypeByName(name))


def value(field, i, zero):
    """A value for `field`, chosen so a wrong type on the other side changes it: negative
    int32s (10-byte varints), uint32s above 2^31, non-ASCII strings."""
    n = field.number
    t = field.type
    if t == FD.TYPE_BOOL:
        return False if zero else (n + i) % 2 == 0
    if t in (FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_SINT32, FD.TYPE_SINT64):
        return 0 if zero else -(n * 1000 + i + 1)
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return 0 if zero else 0x80000000 + n * 1000 + i
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return 0 if zero else (1 << 40) + n * 1000 + i
    if t == FD.TYPE_STRING:
        return "" if zero else "%s-%d-\u00fc" % (field.name, i)
    if t == FD.TYPE_BYTES:
        return b"" if zero else bytes([0xFF, n & 0xFF, i])
    if t == FD.TYPE_ENUM:
        values = field.enum_type.values
        return values[0].number if zero else values[(n + i) % len(values)].number
    raise SystemExit("peer.py: no sample value for %s (type %d)" % (field.full_name, t))


def fill(msg, zero):
    for field in msg.DESCRIPTOR.fields:
        count = 2 if field.label == FD.LABEL_REPEATED else 1
        for i in range(count):
            if field.type == FD.TYPE_MESSAGE:
                target = (
                    getattr(msg, field.name).add()
                    if field.label == FD.LABEL_REPEATED
                    else getattr(msg, field.name)
                )
                fill(target, zero)
                # An empty optional sub-message must still be present.
                if field.label != FD.LABEL_REPEATED:
                    target.SetInParent()
            elif field.label == FD.LABEL_REPEATED:
                getattr(msg, field.name).append(value(field, i, zero))
            else:
                setattr(msg, field.name, value(field, i, zero))
    return msg


def differences(a, b, path=""):
    """Field paths whose presence or value differ between a and b."""
    out = []
    for field in a.DESCRIPTOR.fields:
        p = path + field.name
        if field.label == FD.LABEL_REPEATED:
            va, vb = list(getattr(a, field.name)), list(getattr(b, field.name))
            if len(va) != len(vb):
                out.append("%s: %d entries, then %d" % (p, len(va), len(vb)))
                continue
            for i, (x, y) in enumerate(zip(va, vb)):
                if field.type == FD.TYPE_MESSAGE:
                    out += differences(x, y, "%s[%d]." % (p, i))
                elif x != y:
                    out.append("%s[%d]: %r, then %r" % (p, i, x, y))
            continue
        ha, hb = a.HasField(field.name), b.HasField(field.name)
        if ha != hb:
            out.append("%s: %s, then %s" % (p, "set" if ha else "unset", "set" if hb else "unset"))
        elif ha and field.type == FD.TYPE_MESSAGE:
            out += differences(getattr(a, field.name), getattr(b, field.name), p + ".")
        elif ha and getattr(a, field.name) != getattr(b, field.name):
            out.append("%s: %r, then %r" % (p, getattr(a, field.name), getattr(b, field.name)))
    for f, _ in b.ListFields():
        if f.containing_type is not b.DESCRIPTOR:
            out.append("%s%s: an extension" % (path, f.name))
    if b.UnknownFields() if hasattr(b, "UnknownFields") else False:
        out.append("%s: unknown fields present" % (path or "message"))
    return out


def parse(cls, path):
    m = cls()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    return m


def main(argv):
    if len(argv) < 4:
        raise SystemExit(__doc__)
    desc, cmd, name = argv[1], argv[2], argv[3]
    cls = load(desc, name)
    if cmd == "sample":
        for out, zero in ((argv[4], False), (argv[5], True)):
            m = fill(cls(), zero)
            missing = m.FindInitializationErrors()
            if missing:
                raise SystemExit("peer.py: sample lacks required fields %s" % missing)
            with open(out, "wb") as f:
                f.write(m.SerializeToString())
    elif cmd == "same":
        expected, actual = parse(cls, argv[4]), parse(cls, argv[5])
        diff = differences(expected, actual)
        missing = actual.FindInitializationErrors()
        if missing:
            diff.append("required fields missing: %s" % missing)
        if diff:
            print("\n".join(diff))
            return 1
        print("same: %d bytes, every field equal" % actual.ByteSize())
    elif cmd == "text":
        sys.stdout.write(text_format.MessageToString(parse(cls, argv[4])))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
