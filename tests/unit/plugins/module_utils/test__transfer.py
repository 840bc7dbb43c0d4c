from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.dockhand.containers.plugins.module_utils import _archive as A
from ansible_collections.dockhand.containers.plugins.module_utils import _transfer as T


def endpoint(**params: object) -> T.Endpoint:
    return T.Endpoint.from_params(dict(dict(host="10.0.0.1", path="/data"), **params))


def test_ssh_command_drops_compression_and_keeps_inventory_options() -> None:
    argv = endpoint(port=2222, user="root", private_key_file="/keys/id", ssh_args="-C -o ControlMaster=auto",
                    ssh_common_args="-o StrictHostKeyChecking=no", ssh_extra_args="-o LogLevel=ERROR",
                    name="node2").command(["python3", "-c", "print(1)", "send", "/a b"])
    assert argv[0] == "ssh" and "-C" not in argv
    # ssh keeps the first value of an option: ours come before the inventory's ControlMaster=auto
    assert argv.index("ControlMaster=no") < argv.index("ControlMaster=auto")
    assert ["-o", "Port=2222", "-o", "User=root", "-o", 'IdentityFile="/keys/id"'] == argv[9:15]
    assert argv[-2] == "10.0.0.1" and argv[-1] == "python3 -c 'print(1)' send '/a b'"
    assert argv[-4:-2] == ["-o", "LogLevel=ERROR"]


def test_bad_endpoints_name_the_field() -> None:
    request = T.TransferRequest(source=endpoint(path="data"), target=endpoint(port=70000), compression="gzip")
    problems = "; ".join(request.problems())
    assert "source.path must be the absolute directory" in problems
    assert "target.port must be 1..65535" in problems
    assert "compression must be one of zstd, none" in problems


def test_shipped_payload_sends_and_receives_as_the_module_does(tmp_path: Path) -> None:
    """The program inside the SSH command is _archive.py itself: run it here, as the hosts run it."""
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(os.urandom(300_000))
    (src / "l").symlink_to("d/f")
    out.mkdir()
    payload = T._payload()
    send = subprocess.Popen([sys.executable, "-c", payload, "send", str(src), "zstd", "1"], stdout=subprocess.PIPE)
    receive = subprocess.run([sys.executable, "-c", payload, "receive", str(out)], stdin=send.stdout,
                             capture_output=True, check=False)
    assert send.wait() == 0 and receive.returncode == 0, receive.stdout
    report = json.loads(receive.stdout)
    assert report["listing_sha256"] == A.host_listing(str(src)).digest() == A.host_listing(str(out)).digest()
    assert (out / "d" / "f").read_bytes() == (src / "d" / "f").read_bytes()
    again = subprocess.run([sys.executable, "-c", payload, "receive", str(out)], input=b"", capture_output=True,
                           check=False)
    assert again.returncode == 1 and "is not empty" in json.loads(again.stdout)["msg"]


def test_live_transfer_tells_both_ends() -> None:
    request = T.TransferRequest(source=endpoint(), target=endpoint(path="/t"), live=True, compression_level=5)
    assert request.sender("P")[-1].endswith("send /data zstd 5 --live")
    assert request.receiver("P")[-1].endswith("receive /t --live")
    quiet = T.TransferRequest(source=endpoint(), target=endpoint(path="/t"))
    assert "--live" not in quiet.sender("P")[-1] + quiet.receiver("P")[-1]
