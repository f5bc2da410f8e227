#!/usr/bin/env python3
"""sluice.toml(5) from the commented configuration the package installs
(packaging/sluice.toml): its opening comment is the description, and each
[section] (its comments and keys, as written) becomes a subsection, so the
manual page and /etc/sluice/sluice.toml can never disagree.

    toml_man.py packaging/sluice.toml VERSION > sluice.toml.5
"""

import re
import sys


def roff(text):
    """Escapes a line for roff: backslashes, and a leading . or '."""
    text = text.replace("\\", "\\e")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def main():
    path, version = sys.argv[1], sys.argv[2]
    with open(path) as f:
        lines = f.read().rstrip("\n").split("\n")
    intro = []
    while lines and lines[0].startswith("#"):
        intro.append(lines.pop(0)[1:].strip())
    # A comment block after a blank line belongs to the section it
    # introduces, if a header follows it.
    sections, current, pending, blank = [], None, [], True
    for line in lines:
        head = re.match(r"^#?\s*(\[\[?[a-z_.]+\]\]?)\s*(#.*)?$", line)
        if head:
            current = (head.group(1), pending + [line])
            sections.append(current)
            pending = []
        elif line.startswith("#") and (blank or pending):
            pending.append(line)
        elif current is None:
            if line.strip():
                sys.exit(f"{path}: a line before the first section: {line!r}")
        else:
            current[1].extend(pending + [line])
            pending = []
        blank = not line.strip()
    if current is not None:
        current[1].extend(pending)
    out = [
        f'.TH SLUICE.TOML 5 "" "sluice {version}" "File Formats"',
        ".SH NAME",
        "sluice.toml \\- configuration of the Sluice load balancer",
        ".SH SYNOPSIS",
        "/etc/sluice/sluice.toml",
        ".SH DESCRIPTION",
    ]
    para = []
    for t in intro[1:] + [""]:
        if t:
            para.append(roff(t))
        elif para:
            out += [".PP"] + para
            para = []
    out += [
        ".PP",
        "The file is TOML. Each section follows, as the installed file has it:",
        "a key left commented out shows its default or an example.",
        "A configuration with an error is refused with the file, the field and the reason.",
        ".SH SECTIONS",
    ]
    for name, body in sections:
        while body and not body[-1].strip():
            body.pop()
        out += [f".SS {roff(name)}", ".nf"] + [roff(b) for b in body] + [".fi"]
    out += [
        ".SH FILES",
        "/etc/sluice/sluice.toml",
        ".SH SEE ALSO",
        ".BR sluice (8),",
        ".BR sluicectl (8),",
        ".BR dpdk-hugepages.py (1),",
        ".BR dpdk-devbind.py (1)",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
