"""Cut tests/data/intel/ubuntu/noble-subset.usn.oval.xml out of the real Canonical file.

Keeps the generator, the inventory definition, the named USN/LSN definitions verbatim and
exactly the tests, objects, states and variables they reference (transitively). Run from the
repository root: ``.venv/bin/python tests/data/intel/ubuntu/make_subset.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

SOURCE = Path("../shared/data/ubuntu/oval/com.ubuntu.noble.usn.oval.xml")
TARGET = Path(__file__).with_name("noble-subset.usn.oval.xml")
KEEP = {
    "USN-6663-3",  # OpenSSL hardening update: no CVE, four binaries
    "USN-6673-3",  # python-cryptography: source name only in the title
    "USN-6718-3",  # curl: several CVEs with CVSS vectors
    "USN-7162-1",  # curl again: the same package, a later fixed version
    "USN-6906-1",  # python-zipp
    "USN-7000-1",  # Expat: CVEs with CVSS 3.1 vectors, source name among the binaries
    "USN-6946-1",  # Django: binaries python3-django/python-django-doc, source python-django
    "LSN-0104-1",  # kernel livepatch: no dpkg check (skipped by design)
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
