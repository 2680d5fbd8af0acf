#!/usr/bin/env python3
"""The library's include graph follows its layers (docs/HACKING.md).

Each folder of libmigstream/ is a layer; a file may include headers of its
own layer and of the layers below it, never of a layer above or beside it:

    common  <-  format  <-  { state, schema, qemu, xen }  <-  libvirt  <-  open

The public headers of include/migstream/ belong to layers too (writer.h is
format's, qemu.h is qemu's), so a file of the format layer may not include
qemu.h either, and a public header may only include headers of its own
layer or below. Programs outside the library (tools/, examples/, bench/,
fuzz/, the Python extension in python/) see only the public headers; tests/ may look inside for unit tests.

Within libmigstream/qemu/ and libmigstream/xen/ the parts of each module
are ranked too (QEMU_PARTS, XEN_PARTS): a part includes only its own header
and headers of parts of a lower rank, so that nothing calls up or across (a
sync point is reported to the driver, not called in multifd).

usage: test_layers.py SOURCE_ROOT
"""
import os
import re
import sys

# Rank of each layer; layers of equal rank are siblings and may not include
# each other. Foreign-format modules sit at 2; a module that wraps another
# (a libvirt save image holds a QEMU stream) at 3; open/, which lists every
# module, above them all.
LAYERS = {'common': 0, 'format': 1, 'state': 2, 'schema': 2, 'qemu': 2, 'xen': 2,
          'libvirt': 3, 'open': 4}
TOP = 9  # the umbrella header, which includes every layer's headers

# The layer of each public header.
PUBLIC = {
    'common.h': 'common',
    'cbor.h': 'common',
    'modules.h': 'common',
    'stream.h': 'format',
    'writer.h': 'format',
    'reader.h': 'format',
    'replay.h': 'format',
    'overlay.h': 'format',
    'pagemap.h': 'state',
    'diff.h': 'state',
    'replay_dir.h': 'state',
    'schema.h': 'schema',
    'qemu.h': 'qemu',
    'libvirt.h': 'libvirt',
    'open.h': 'open',
    'xen.h': 'xen',
    'migstream.h': None,  # the umbrella: includes everything
}

# The parts of libmigstream/qemu/, by file stem, lowest first; parts of equal
# rank are siblings and may not include each other.
QEMU_PARTS = {
    'wire': 0,         # QEMU's wire constants
    'input': 1,        # errors, the buffered cursor
    'sink': 2,         # block table, passes, page file, the records handed out
    'multifd_zip': 2,  # decompression of multifd channels
    'ram': 3,          # the "ram" section
    'multifd': 3,      # multifd channels
    'mapped_ram': 3,   # mapped-ram pages
    'vmsd': 3,         # the JSON trailer, device state
    'export': 3,       # the exporter
    'source': 4,       # the driver: the module's msi_source_ops
    'import': 5,       # the public ms_qemu_import_* API
}

# The parts of libmigstream/xen/, the same way.
XEN_PARTS = {
    'wire': 0,     # Xen's wire constants
    'input': 1,    # errors, the buffered cursor
    'records': 2,  # the record table: lengths, DEVICE paths and states
    'rules': 2,    # the order of libxc records
    'pages': 2,    # regions, the PAGES records pages coalesce into
    'types': 2,    # the page types kept per block of pfns
    'export': 3,   # the exporter
    'source': 4,   # the driver: the module's msi_source_ops
    'import': 5,   # the public ms_xen_import_* API
}

# Each module with ranked parts: its folder and its ranks.
MODULE_PARTS = {'qemu': ('QEMU', QEMU_PARTS), 'xen': ('Xen', XEN_PARTS)}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def may_include(src_layer, dst_layer):
    """True when a file of src_layer may include a header of dst_layer."""
    if src_layer is None:  # the umbrella header
        return True
    if dst_layer is None:
        return False
    if src_layer == dst_layer:
        return True
    return LAYERS[dst_layer] < LAYERS[src_layer]


def header_layer(name):
    """The layer of an included path, or '' for a system header."""
    if name.startswith('migstream/'):
        base = name[len('migstream/'):]
        if base not in PUBLIC:
            raise KeyError(name)
        return PUBLIC[base]
    top = name.split('/', 1)[0]
    if '/' in name and top in LAYERS:
        return top
    return ''


def part_problem(module, rel, name):
    """Why the part @rel of @module may not include @name, or None."""
    title, parts = MODULE_PARTS[module]
    src = os.path.splitext(os.path.basename(rel))[0]
    if not name.startswith(module + '/'):
        return None
    dst = os.path.splitext(name[len(module) + 1:])[0]
    if dst not in parts:
        return '%s includes %s, which is not a ranked part of the %s module' % (rel, name, title)
    if dst != src and parts[dst] >= parts[src]:
        return '%s (%s part %s, rank %d) includes %s (rank %d)' % (
            rel, title, src, parts[src], name, parts[dst])
    return None


def main():
    root = sys.argv[1]
    problems = []
    checked = 0

    def check(path, src_layer, public_only):
        nonlocal checked
        rel = os.path.relpath(path, root)
        text = open(path, encoding='utf-8').read()
        for quote, name in INCLUDE.findall(text):
            checked += 1
            if rel.startswith('include/migstream/') and quote == '"' and '/' not in name:
                name = 'migstream/' + name
            try:
                dst = header_layer(name)
            except KeyError:
                problems.append('%s includes %s, which is not a public header' % (rel, name))
                continue
            if dst == '':
                continue
            if public_only and not name.startswith('migstream/'):
                problems.append('%s includes the library-internal %s' % (rel, name))
            elif not public_only and not may_include(src_layer, dst):
                problems.append('%s (layer %s) includes %s (layer %s)' %
                                (rel, src_layer, name, dst or 'umbrella'))
            elif src_layer in MODULE_PARTS and rel.startswith('libmigstream/%s/' % src_layer):
                why = part_problem(src_layer, rel, name)
                if why:
                    problems.append(why)

    lib = os.path.join(root, 'libmigstream')
    for layer in sorted(os.listdir(lib)):
        d = os.path.join(lib, layer)
        if not os.path.isdir(d):
            continue
        if layer not in LAYERS:
            problems.append('libmigstream/%s/ is not a known layer (tests/meta/test_layers.py)' % layer)
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(('.c', '.h')):
                if layer in MODULE_PARTS and os.path.splitext(f)[0] not in MODULE_PARTS[layer][1]:
                    problems.append('libmigstream/%s/%s is not a ranked part of the %s '
                                    'module (tests/meta/test_layers.py)' %
                                    (layer, f, MODULE_PARTS[layer][0]))
                    continue
                check(os.path.join(d, f), layer, False)
    for f in os.listdir(lib):
        if f.endswith(('.c', '.h')):
            problems.append('libmigstream/%s lies outside every layer' % f)

    inc = os.path.join(root, 'include', 'migstream')
    for f in sorted(os.listdir(inc)):
        if f.endswith(('.h', '.h.in')):
            h = f[:-3] if f.endswith('.in') else f
            if h not in PUBLIC:
                problems.append('include/migstream/%s has no layer in tests/meta/test_layers.py' % h)
                continue
            check(os.path.join(inc, f), PUBLIC[h], False)

    for outside in ['tools', 'examples', 'bench', 'fuzz', 'python']:
        for dirpath, _, files in os.walk(os.path.join(root, outside)):
            for f in sorted(files):
                if f.endswith(('.c', '.h')):
                    path = os.path.join(dirpath, f)
                    # The benchmark times the internal uniform-page routines.
                    if os.path.relpath(path, root) == 'bench/migstream-bench.c':
                        continue
                    check(path, None, True)

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print('%d includes follow the layers' % checked)
    return 0


if __name__ == '__main__':
    sys.exit(main())
