import io

import pytest

from nni.runtime import protocol
from nni.runtime.protocol import CommandType, ProtocolError


@pytest.fixture
def streams():
    inp, out = io.BytesIO(), io.BytesIO()
    old = protocol._in_file, protocol._out_file
    protocol.set_streams(inp, out)
    yield inp, out
    protocol._in_file, protocol._out_file = old


def test_send_is_byte_exact(streams):
    _, out = streams
    protocol.send(CommandType.NewTrialJob, "CONTENT")
    assert out.getvalue() == b"TR00000000000007CONTENT"


def test_non_ascii_length_counts_bytes(streams):
    _, out = streams
    protocol.send(CommandType.Error, "é€")
    assert out.getvalue() == b"ER00000000000005" + "é€".encode("utf-8")


def test_empty_payload(streams):
    _, out = streams
    protocol.send(CommandType.Initialized, "")
    assert out.getvalue() == b"ID00000000000000"


def test_receive_roundtrip(streams):
    inp, _ = streams
    inp.write(protocol.encode(CommandType.Initialize, '{"x": "é"}') + protocol.encode(CommandType.Terminate, ""))
    inp.seek(0)
    assert protocol.receive() == (CommandType.Initialize, '{"x": "é"}')
    assert protocol.receive() == (CommandType.Terminate, "")
    assert protocol.receive() == (None, None)


def test_all_command_codes():
    codes = {c.name: c.value for c in CommandType}
    assert codes == {
        "Initialize": b"IN", "RequestTrialJobs": b"GE", "ReportMetricData": b"ME", "UpdateSearchSpace": b"SS",
        "ImportData": b"FD", "AddCustomizedTrialJob": b"AD", "TrialEnd": b"EN", "Terminate": b"TE", "Ping": b"PI",
        "Initialized": b"ID", "NewTrialJob": b"TR", "SendTrialJobParameter": b"SP", "NoMoreTrialJobs": b"NO",
        "KillTrialJob": b"KI", "Error": b"ER",
    }


def test_unknown_command_and_truncated_frame(streams):
    inp, _ = streams
    inp.write(b"XX00000000000000")
    inp.seek(0)
    with pytest.raises(ProtocolError, match="unknown command"):
        protocol.receive()
    inp.seek(0)
    inp.truncate()
    inp.write(b"IN00000000000010abc")
    inp.seek(0)
    with pytest.raises(ProtocolError, match="closed inside"):
        protocol.receive()


def test_pack_parameter_shape():
    assert protocol.pack_parameter(3, {"a": 1}) == (
        '{"parameter_id": 3, "parameter_source": "algorithm", "parameters": {"a": 1}, "parameter_index": 0}'
    )
