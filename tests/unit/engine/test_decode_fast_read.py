"""``decode`` reads a plainly clean record's type in C and skips the slower checks: a record gets
the same outcome as from every check one after the other (``_decode_checked``), whatever it holds."""
import json
import random

import pytest

from services.engine.decode import Decoded, _decode_checked, _type_of_clean, decode
from services.simulator.config import SimConfig
from services.simulator.generate import simulate
from services.simulator.hostile import KINDS
from services.simulator.lines import to_line
from tests import builders


def _valid_lines() -> list[bytes]:
    cfg = SimConfig(vpas=80, days=40, seed=3)
    return [to_line(item) for _, item in zip(range(1500), simulate(cfg))]


VALID = _valid_lines()


def _same(raw: bytes | str) -> None:
    fast, checked = decode(raw), _decode_checked(raw)
    assert type(fast) is type(checked), (raw, fast, checked)
    if isinstance(fast, Decoded):
        assert fast.envelope == checked.envelope
    else:
        assert fast == checked, raw


def test_every_simulated_line_is_decoded_as_before():
    assert VALID
    for line in VALID:
        assert _type_of_clean(line) is not None  # the fast read is taken, not the checked one
        assert isinstance(decode(line), Decoded)
        _same(line)


@pytest.mark.parametrize("kind", [name for name, _ in KINDS])
def test_every_hostile_kind_gets_the_same_reason(kind):
    make = dict(KINDS)[kind]
    for n, line in enumerate(VALID[:40]):
        _same(make(json.loads(line), n))


ODD = [
    b'{"type":"vpa.activity_seen","x":"\\u0000"}', b'{"type":"vpa.activity_seen","x":"\\\\u0000"}',
    b'{"type":"vpa.activity_seen","x":"\\ud800"}', b'{"type":"vpa.activity_seen","x":NaN}',
    b'{"type":"vpa.activity_seen","x":Infinity}', b'\xef\xbb\xbf{"type":"vpa.activity_seen"}',
    '{"type":"vpa.activity_seen"}'.encode("utf-16"), '{"type":"vpa.activity_seen"}'.encode("utf-32"),
    b'{"type":"vpa.activity_seen","x":' + b"[" * 20 + b"]" * 20 + b"}",
    b'{"type":"vpa.activity_seen","x":' + b"[" * 15 + b"]" * 15 + b"}",
    b'{"type":"vpa.activity_seen","x":"' + b"{" * 30 + b'"}',
    b'{"type":"a","type":"vpa.activity_seen"}', b'{"type":"vpa.activity_seen","type":7}',
    b'{"type":"\\u0076pa.activity_seen"}', b'{"type":""}', b'{"type":null}', b'{}', b'[]', b'"x"', b'1',
    b'{"type":"vpa.activity_seen"} ', b'{"type":"vpa.activity_seen"}\n', b' {"type":"nope"}',
    b'{"type":"vpa.activity_seen",}', b"{'type':'vpa.activity_seen'}", b'{"type":"vpa.activity_seen"}x',
    b'{"type":"vpa.activity_seen","n":1e400}', b'{"type":"vpa.activity_seen","n":123456789012345678901234567890}',
    b'{"type":"vpa.activity_seen","s":"a\tb"}', b'{"type":"vpa.activity_seen","s":"\xff"}',
    b'{"type":"vpa.activity_seen\x00"}', b'{"type":"unknown.kind","data":{}}',
    '{"type":"vpa.activity_seen","s":"\udcff"}', '{"type":"vpa.activity_seen"}',
]


@pytest.mark.parametrize("raw", ODD)
def test_odd_records_get_the_same_outcome(raw):
    _same(raw)


def test_random_damage_to_valid_lines_gets_the_same_outcome():
    rng = random.Random(11)
    pieces = [b"\\u0000", b"\\", b'"', b"{", b"[", b"]", b"}", b",", b":", b"\xff", b"\x00", b"\\ud800",
              b"NaN", b"null", b" ", b"\n", b"1e999", b"-"]
    for _ in range(4000):
        line = bytearray(rng.choice(VALID))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line) + 1)
            what = rng.random()
            if what < 0.4:
                line[at:at] = rng.choice(pieces)
            elif what < 0.7:
                del line[at:at + rng.randint(1, 4)]
            else:
                line[at:at + 1] = bytes([rng.randrange(256)])
        _same(bytes(line))


def test_a_command_built_by_the_builders_takes_the_fast_read():
    raw = builders.raw("cmd.case.resolve", {"task_id": "case:x", "note": None}, vpa_id="V-1",
                       actor={"initials": "AB", "role": "at"})
    assert _type_of_clean(raw) == "cmd.case.resolve"
    assert isinstance(decode(raw), Decoded)
    _same(raw)


@pytest.mark.parametrize("raw", [b'{"type":"vpa.activity_seen","x":"\\u0000"}',
                                 b'{"type":"vpa.activity_seen","x":' + b"[" * 17 + b"]" * 17 + b"}",
                                 b'{"type":"vpa.activity_seen","x":"\xff"}', b"[1]"])
def test_what_might_hold_poison_or_is_not_an_object_takes_the_checked_read(raw):
    assert _type_of_clean(raw) is None
