"""Cut tests/data/accuracy/ubuntu/noble-accuracy.usn.oval.xml out of the real Canonical file.

Keeps the generator, the inventory definition, the named USN/LSN definitions verbatim and
exactly the tests, objects, states and variables they reference (transitively). Run from the
repository root: ``.venv/bin/python tests/data/accuracy/ubuntu/make_subset.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

SOURCE = Path("../shared/data/ubuntu/oval/com.ubuntu.noble.usn.oval.xml")
TARGET = Path(__file__).with_name("noble-accuracy.usn.oval.xml")
KEEP = {
    # Sources whose name is also one of their binaries' names.
    "USN-6663-3",  # openssl (libssl3t64, openssl): hardening update, no CVE
    "USN-6937-1",  # openssl
    "USN-6986-1",  # openssl
    "USN-7000-1",  # expat (libexpat1, expat)
    "USN-7145-1",  # expat
    "USN-6756-1",  # less
    "USN-6718-3",  # curl (libcurl4t64, curl)
    "USN-7162-1",  # curl
    # Sources none of whose binaries carries the source name.
    "USN-6673-3",  # python-cryptography (python3-cryptography)
    "USN-6946-1",  # python-django (python3-django, epoch 3:)
    "USN-6827-1",  # tiff (libtiff6)
    "USN-6997-1",  # tiff
    "USN-6768-1",  # glib2.0 (libglib2.0-0t64)
    "USN-7114-1",  # glib2.0
    "USN-6859-1",  # openssh (openssh-client, openssh-server)
    "USN-6887-1",  # openssh
    # A running-kernel check: skipped by design.
    "LSN-0104-1",
}
NS = {
    "oval": "http://oval.mitre.org/XMLSchema/oval-common-5",
    "": "http://oval.mitre.org/XMLSchema/oval-definitions-5",
    "ind": "http://oval.mitre.org/XMLSchema/oval-definitions-5#independent",
    "linux": "http://oval.mitre.org/XMLSchema/oval-definitions-5#linux",
    "unix": "http://oval.mitre.org/XMLSchema/oval-definitions-5#unix",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


def main() -> None:
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.parse(SOURCE).getroot()
    d = "{" + NS[""] + "}"
    defs = root.find(f"{d}definitions")
    assert defs is not None
    wanted: set[str] = set()
    for definition in list(defs):
        title = definition.findtext(f"{d}metadata/{d}title") or ""
        keep = definition.get("class") == "inventory" or title.split(" ")[0] in KEEP
        if keep:
            wanted.update(
                re.findall(
                    r'(?:test_ref|definition_ref)="([^"]+)"',
                    ET.tostring(definition, encoding="unicode"),
                )
            )
        else:
            defs.remove(definition)
    # Resolve references transitively through tests, objects, states and variables.
    sections = [root.find(f"{d}{name}") for name in ("tests", "objects", "states", "variables")]
    changed = True
    while changed:
        changed = False
        for section in sections:
            assert section is not None
            for item in section:
                if item.get("id") in wanted:
                    refs = set(
                        re.findall(
                            r'(?:_ref|object_ref|state_ref|var_ref)="([^"]+)"',
                            ET.tostring(item, encoding="unicode"),
                        )
                    )
                    refs |= {e.text for e in item.iter() if e.tag.endswith("var_ref") and e.text}
                    if not refs <= wanted:
                        wanted |= refs
                        changed = True
    for section in sections:
        assert section is not None
        for item in list(section):
            if item.get("id") not in wanted:
                section.remove(item)
    ET.ElementTree(root).write(TARGET, encoding="UTF-8", xml_declaration=True)


if __name__ == "__main__":
    main()
