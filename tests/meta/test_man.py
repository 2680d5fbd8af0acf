#!/usr/bin/env python3
"""Every function of the installed API has an installed man page.

For each public header this build installs (include/migstream/*.h, as
meson's install plan lists them), every function declared MS_API must have
an installed section 3 page named after it: the family's page or a link to
it (".so man3/PAGE.3", docs/man/meson.build), and that page must declare
the function in its SYNOPSIS. The reverse holds too: every name a page's
NAME section lists is an MS_API function of an installed header, so that
no page outlives the function it documents.

usage: test_man.py BUILD_ROOT
"""
import json
import os
import re
import sys

MS_API = re.compile(r'^MS_API\s[^;]*?\b(ms_\w+)\s*\(', re.M | re.S)
COMMENT = re.compile(r'/\*.*?\*/', re.S)
LINK = re.compile(r'^\.so man3/([\w.-]+\.3)\s*$')


def section(text, name):
    """The text of man page section NAME (between .SH NAME and the next .SH)."""
    m = re.search(r'^\.SH "?' + name + r'"?\s*\n(.*?)(?=^\.SH |\Z)', text, re.M | re.S)
    return m.group(1) if m else ''


def main():
    build = sys.argv[1]
    with open(os.path.join(build, 'meson-info', 'intro-installed.json')) as f:
        installed = json.load(f)  # built or source file -> installed path

    headers, pages = [], {}
    for src, dest in installed.items():
        if re.search(r'/include/migstream/[^/]+\.h$', dest):
            headers.append(src)
        elif re.search(r'/man3/[^/]+\.3$', dest):
            pages[os.path.basename(dest)] = src

    functions = {}  # name -> header
    for h in sorted(headers):
        with open(h) as f:
            text = COMMENT.sub(' ', f.read())
        for name in MS_API.findall(text):
            functions[name] = os.path.basename(h)

    failures = []
    links = 0
    for name, header in sorted(functions.items()):
        page = name + '.3'
        if page not in pages:
            failures.append('%s (%s) has no installed man page %s' % (name, header, page))
            continue
        with open(pages[page]) as f:
            text = f.read()
        m = LINK.match(text)
        if m:
            links += 1
            target = m.group(1)
            if target not in pages:
                failures.append('%s links to %s, which is not installed' % (page, target))
                continue
            with open(pages[target]) as f:
                text = f.read()
            page = target
        if not re.search(r'\b' + name + r'\(', section(text, 'SYNOPSIS')):
            failures.append('%s (%s): its page %s does not declare it in SYNOPSIS'
                            % (name, header, page))

    for page, src in sorted(pages.items()):
        with open(src) as f:
            text = f.read()
        if LINK.match(text):
            continue
        names = section(text, 'NAME').split('\\-')[0].replace('\n', ' ')
        for name in (n.strip() for n in names.split(',')):
            if name and name not in functions and name + '.3' != page:
                failures.append('%s lists %s in NAME, which no installed header declares'
                                % (page, name))

    for line in failures:
        print(line)
    if not functions:
        print('no MS_API function found in the installed headers')
        return 1
    print('%d functions of %d installed headers, each with an installed man page '
          '(%d pages, %d of them links)' % (len(functions), len(headers), len(pages), links))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
