# scripts/ftp-hostile.py HOME SPEC.json
# A pyftpdlib server that lies, for the tests (started through `scripts/ftp-server.sh
# hostile`): it serves the files under HOME like any server, but answers MLSD and MLST with
# the raw lines SPEC gives for some paths, so a test can list names no filesystem holds
# (`a/b.txt`, `../x`, a name listed twice) or announce sizes a transfer does not deliver.
#
# SPEC: {"mlsd": {"/dir": ["type=file;size=5; a/b.txt", ...]},
#        "mlst": {"/dir/f": "type=file;size=1000000;modify=20240101000000;"}}
# Paths are as the client sees them (HOME is "/"). Listens on 127.0.0.1, on a free port that
# it prints on its first line of output; user "hostile", password "hostile-password".
import json
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

home, spec_path = sys.argv[1], sys.argv[2]
with open(spec_path) as f:
    spec = json.load(f)


def encode(line):
    return (line + "\r\n").encode("utf8", "surrogateescape")


class HostileFS(AbstractedFS):
    def format_mlsx(self, basedir, listing, perms, facts, ignore_err=True):
        # MLSD lists a directory (errors ignored); MLST one path (errors raised).
        if ignore_err:
            lines = spec.get("mlsd", {}).get(self.fs2ftp(basedir))
            if lines is not None:
                return iter([encode(line) for line in lines])
        elif len(listing) == 1:
            facts_line = spec.get("mlst", {}).get(self.fs2ftp(os.path.join(basedir, listing[0])))
            if facts_line is not None:
                # The handler keeps what is before the first space and adds the path.
                return iter([encode(facts_line + " x")])
        return super().format_mlsx(basedir, listing, perms, facts, ignore_err)


logging.basicConfig(level=logging.WARNING)
auth = DummyAuthorizer()
auth.add_user("hostile", "hostile-password", home, perm="elr")
FTPHandler.authorizer = auth
FTPHandler.abstracted_fs = HostileFS
server = FTPServer(("127.0.0.1", 0), FTPHandler)
print(server.socket.getsockname()[1], flush=True)
server.serve_forever()
