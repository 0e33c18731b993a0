#!/usr/bin/python3
"""Generates the help texts and the command table of persipubsub-ctl.

    gen_help.py MANUAL.rst OUTPUT.c

MANUAL.rst (docs/persipubsub-ctl.rst) is the one source of the tool's help;
the comment at its top says what is taken from where. OUTPUT.c defines
ctl_tool_help and ctl_commands[] (cli/ctl.h). Any deviation from that
structure, or a docutils warning, is an error: the build fails rather than
compile a help that lost a part. Needs docutils (Debian: python3-docutils).
"""
import re
import sys
import textwrap

import docutils.core
import docutils.nodes as nodes

TOOL = "persipubsub-ctl"
WIDTH = 72        # of the text
TABLE_WIDTH = 79  # of the command table of the tool's help
NBSP = "\u00a0"


class ManualError(Exception):
    pass


def text(node, quote=True):
    """The text of node without markup, its white space collapsed. If
    quote, an inline literal of several words, or of one character, is
    quoted ('PATH: problem', '-') and not broken across lines."""
    def walk(n):
        if quote and isinstance(n, nodes.literal) and (
                " " in n.astext() or len(n.astext()) == 1):
            return "'%s'" % " ".join(n.astext().split()).replace(" ", NBSP)
        if isinstance(n, nodes.Text):
            return str(n)
        return "".join(walk(c) for c in n.children)
    return " ".join(walk(node).split())


def first_sentence(node):
    """Up to the first '.' or ':' that ends a word, first letter lowered."""
    t = text(node)
    m = re.search(r"[.:](\s|$)", t)
    if m is None:
        raise ManualError("no sentence in: " + t)
    t = t[: m.start()]
    return t[:1].lower() + t[1:]


def section(doc, name):
    for s in doc.findall(nodes.section):
        if name in s["names"]:
            return s
    raise ManualError("no section " + name.upper())


def only_child(parent, cls, what):
    found = [c for c in parent.children if isinstance(c, cls)]
    if len(found) != 1:
        raise ManualError("%s: expected one %s, found %d"
                          % (what, cls.__name__, len(found)))
    return found[0]


def fill(t, indent, first_indent=None, width=WIDTH):
    t = textwrap.fill(t, width, initial_indent=(indent if first_indent is None
                                                    else first_indent),
                         subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)
    return t.replace(NBSP, " ")


def fill_usage(line):
    """A usage line, wrapped between [...] groups, never inside one."""
    depth = 0
    kept = []
    for ch in line:
        depth += ch == "["
        depth -= ch == "]"
        kept.append(NBSP if ch == " " and depth > 0 else ch)
    prefix = "Usage: " + TOOL + " "
    return fill("Usage: " + "".join(kept), " " * len(prefix), "")


def options(option_list, what):
    """'Options:' lines: each option with the first paragraph of its
    description."""
    items = []
    for item in option_list.children:
        group = only_child(item, nodes.option_group, what)
        names = []
        for opt in group.children:
            name = text(opt.children[0])
            for arg in opt.children[1:]:
                name += arg.get("delimiter", " ") + text(arg)
            names.append(name)
        desc = only_child(item, nodes.description, what)
        if not desc.children or not isinstance(desc.children[0],
                                               nodes.paragraph):
            raise ManualError(what + ": an option without a description")
        items.append((", ".join(names), text(desc.children[0])))
    col = 2 + max(len(n) for n, _ in items) + 2
    lines = ["Options:"]
    for name, desc in items:
        lines.append(fill(desc, " " * col, ("  " + name).ljust(col)))
    return "\n".join(lines) + "\n"


def synopsis_lines(doc):
    block = only_child(section(doc, "synopsis"), nodes.line_block,
                       "SYNOPSIS")
    return [text(line, quote=False) for line in block.children]


def command_help(name, term, body, synopsis):
    """The text of 'name --help'."""
    usage = [s for s in synopsis
             if re.match(r"%s( \[--config FILE\])? %s( |$)"
                         % (re.escape(TOOL), re.escape(name)), s)]
    if len(usage) != 1:
        raise ManualError("SYNOPSIS: expected one line for " + name)
    if not usage[0].endswith(" " + term):
        raise ManualError("SYNOPSIS and COMMANDS differ for %s: %r, %r"
                          % (name, usage[0], term))
    parts = [fill_usage(usage[0]) + "\n"]
    for child in body.children:
        if not isinstance(child, nodes.paragraph):
            break
        parts.append(fill(text(child), "") + "\n")
    lists = [c for c in body.children if isinstance(c, nodes.option_list)]
    if len(lists) > 1:
        raise ManualError(name + ": more than one option list")
    if lists:
        parts.append(options(lists[0], name))
    if len(parts) < 2:
        raise ManualError(name + ": no description")
    return "\n".join(parts)


def commands(doc, synopsis):
    """[(name, summary, term, help text)] in the manual's order."""
    sec = section(doc, "commands")
    dl = only_child(sec, nodes.definition_list, "COMMANDS")
    out = []
    for item in dl.children:
        term = text(item.children[0], quote=False)
        name = term.split()[0]
        if not re.fullmatch(r"[a-z]+(-[a-z]+)*", name):
            raise ManualError("COMMANDS: bad command name " + repr(name))
        body = only_child(item, nodes.definition, name)
        if not body.children or not isinstance(body.children[0],
                                               nodes.paragraph):
            raise ManualError(name + ": the body must open with a paragraph")
        out.append((name, first_sentence(body.children[0]), term,
                    command_help(name, term, body, synopsis)))
    return out


def tool_help(doc, synopsis, cmds):
    subtitle = only_child(doc, nodes.subtitle, "the document")
    about = text(subtitle)
    lines = [fill_usage(synopsis[0]), "",
             about[:1].upper() + about[1:] + ".", "", "Commands:"]
    col = 27
    for _, summary, term, _ in cmds:
        if len(term) + 2 <= col - 2:
            lines.append(fill(summary, " " * col, ("  " + term).ljust(col),
                              TABLE_WIDTH))
        else:
            lines.append("  " + term)
            lines.append(fill(summary, " " * col, width=TABLE_WIDTH))
    opts = only_child(section(doc, "options"), nodes.option_list, "OPTIONS")
    lines += ["", options(opts, "OPTIONS").rstrip("\n"), ""]
    dl = only_child(section(doc, "exit status"), nodes.definition_list,
                    "EXIT STATUS")
    statuses = ["%s %s" % (text(i.children[0], quote=False),
                           first_sentence(i.children[1].children[0]))
                for i in dl.children]
    lines.append(fill("Exit status: " + ", ".join(statuses) + ".", "",
                      width=TABLE_WIDTH))
    lines.append("See '%s COMMAND --help' and 'man %s'." % (TOOL, TOOL))
    return "\n".join(lines) + "\n"


def c_name(name):
    """The C name of a command: "remove-subscriber" runs
    ctl_cmd_remove_subscriber()."""
    return name.replace("-", "_")


def c_string(t, indent="    "):
    """t as a C string literal, one source line per line of text."""
    if any(ord(ch) > 126 or (ord(ch) < 32 and ch != "\n") for ch in t):
        raise ManualError("not printable ASCII: " + repr(t))
    out = []
    for line in t.splitlines(keepends=True):
        esc = (line.replace("\\", "\\\\").replace('"', '\\"')
               .replace("?", "\\?").replace("\n", "\\n"))
        out.append('%s"%s"' % (indent, esc))
    return "\n".join(out)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gen_help.py MANUAL.rst OUTPUT.c\n")
        return 2
    src, dst = argv[1], argv[2]
    with open(src, encoding="utf-8") as f:
        rst = f.read()
    doc = docutils.core.publish_doctree(
        rst, source_path=src,
        settings_overrides={"halt_level": 2, "report_level": 2})
    synopsis = synopsis_lines(doc)
    cmds = commands(doc, synopsis)
    if len({c[0] for c in cmds}) != len(cmds):
        raise ManualError("COMMANDS: a command is listed twice")
    out = ["/* Generated by cli/gen_help.py from docs/persipubsub-ctl.rst:",
           " * edit that file, not this one. */",
           '#include "ctl.h"', "", "#include <stddef.h>", "",
           "const char ctl_tool_help[] =",
           c_string(tool_help(doc, synopsis, cmds)) + ";", ""]
    for name, _, _, help_text in cmds:
        out += ["static const char help_%s[] =" % c_name(name),
                c_string(help_text) + ";", ""]
    out.append("const ctl_command ctl_commands[] = {")
    for name, _, _, _ in cmds:
        out.append('    {"%s", ctl_cmd_%s, help_%s},'
                   % (name, c_name(name), c_name(name)))
    out += ["    {NULL, NULL, NULL},", "};", ""]
    with open(dst, "w", encoding="ascii") as f:
        f.write("\n".join(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ManualError, OSError) as e:
        sys.stderr.write("gen_help.py: %s: %s\n"
                         % (sys.argv[1] if len(sys.argv) > 1 else "", e))
        sys.exit(1)
