#!/usr/bin/env python3
"""Writes the C example of README.md's "Using the library" (the first ```c
block that is a whole program part, starting with #include) to OUT, so that
the test suite compiles and runs exactly what the README shows.

usage: readme_example.py README.md OUT.c
"""
import re
import sys

text = open(sys.argv[1], encoding='utf-8').read()
blocks = re.findall(r'^```c\n(.*?)^```$', text, re.S | re.M)
code = next((b for b in blocks if b.startswith('#include')), None)
if code is None:
    sys.exit('readme_example.py: README.md has no ```c block starting with #include')
with open(sys.argv[2], 'w', encoding='utf-8') as f:
    f.write('/* Generated from README.md by tests/format/readme_example.py. */\n')
    f.write(code)
