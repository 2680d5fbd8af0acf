#!/usr/bin/env python3
"""`meson install` of this build gives a tree that works where it lands.

Installs the build with --destdir into a temporary directory, then checks
the staged tree as a user of that prefix would see it, with LD_LIBRARY_PATH
unset throughout:

- bindir holds the migstream-* tools and nothing else (the examples,
  migstream-demo and kvm-migrate, only with -Dinstall_examples=true); each
  tool resolves libmigstream.so.0 to the installed copy through its run path
  ($ORIGIN/../LIBDIR, meson.build) and runs (--version);
- man1 has each tool's page, man3 libmigstream(3); every document an
  installed page cites by its installed path is installed there
  (docs/meson.build), and no page cites the source tree's docs/;
- the pkg-config file works: a program built with `pkg-config --cflags
  --libs libmigstream` (prefix pointed at the staged tree) and the run path
  a program gives itself for a library outside the linker's directories,
  -Wl,-rpath,$(pkg-config --variable=libdir libmigstream), runs against the
  installed library. The .pc file carries no run path (libmigstream(3),
  NOTES); with a sanitizer build the program is built with the same
  -fsanitize flags, as any program linking a sanitized library must be;
- the Python package, when built, imports from the installed site directory
  (PYTHONPATH) and loads the installed libmigstream.so through its run path;
  in a sanitizer build the ASan runtime is preloaded into the interpreter, as
  for tests/python.

usage: test_install.py BUILD_ROOT MESON PYTHON ASAN_RUNTIME -- CC...
  PYTHON: the interpreter the package is built for, or "" when it is not
  built; ASAN_RUNTIME: the ASan runtime to preload into it, or "".
  CC: the compiler command of the build.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROGRAM = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <migstream/migstream.h>

int main(void)
{
    Dl_info info;
    ms_writer *w = ms_writer_new_fd(NULL, -1); /* a failed handle: MS_EINVAL */
    int st = ms_writer_status(w);
    ms_writer_free(w);
    if (st != MS_EINVAL || !dladdr((void *)ms_version_string, &info))
        return 1;
    printf("%s %s\n", ms_version_string(), info.dli_fname);
    return 0;
}
'''

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def ok(msg, since=None):
    """Says MSG, unless something failed since failure count SINCE."""
    if since is None or len(failures) == since:
        print('ok: ' + msg)


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)


def loaded_from(exe, env):
    """Where the dynamic linker finds libmigstream.so.0 for EXE, or 'nowhere'."""
    p = run([exe], dict(env, LD_TRACE_LOADED_OBJECTS='1'))
    m = re.search(r'libmigstream\.so\.0 => (\S+)', p.stdout)
    if not m or not m.group(1).startswith('/'):
        return 'nowhere'
    return os.path.realpath(m.group(1))


def main():
    build, meson, python, asan_runtime = sys.argv[1:5]
    cc = sys.argv[6:]
    with open(os.path.join(build, 'meson-info', 'intro-buildoptions.json')) as f:
        opt = {o['name']: o['value'] for o in json.load(f)}
    with open(os.path.join(build, 'meson-info', 'intro-installed.json')) as f:
        plan = json.load(f)
    with open(os.path.join(build, 'meson-info', 'intro-projectinfo.json')) as f:
        version = json.load(f)['version']
    pkg_config = shutil.which('pkg-config')
    if not pkg_config:
        print('pkg-config is not installed: skipped (the build itself needs it)')
        return 77

    env = {k: v for k, v in os.environ.items()
           if k not in ('LD_LIBRARY_PATH', 'LD_PRELOAD', 'PYTHONPATH', 'PKG_CONFIG_PATH',
                        'PKG_CONFIG_LIBDIR', 'PKG_CONFIG_SYSROOT_DIR', 'DESTDIR')}
    dest = tempfile.mkdtemp(prefix='ms-install-')
    try:
        p = run([meson, 'install', '-C', build, '--no-rebuild', '--quiet', '--destdir', dest],
                env)
        if p.returncode != 0:
            print(p.stdout)
            fail('meson install --destdir failed')
            return 1
        ok('meson install --destdir ' + dest)

        def staged(path):
            return os.path.join(dest, path.lstrip('/'))

        prefix = opt['prefix']
        bindir = staged(os.path.join(prefix, opt['bindir']))
        libdir = staged(os.path.join(prefix, opt['libdir']))
        mandir = staged(os.path.join(prefix, opt['mandir']))
        docdir = os.path.join(prefix, opt['datadir'], 'doc', 'libmigstream')
        schemadir = os.path.join(prefix, opt['datadir'], 'libmigstream', 'schemas')
        installed_lib = os.path.realpath(os.path.join(libdir, 'libmigstream.so.0'))
        # A libdir or bindir outside the prefix (meson keeps such an option
        # absolute) gives absolute run paths (meson.build), which point out
        # of the staging directory: what they find cannot be checked here.
        relocatable = not os.path.isabs(opt['libdir']) and not os.path.isabs(opt['bindir'])
        if not relocatable:
            print('note: libdir %s or bindir %s lies outside the prefix, so the run paths are '
                  'absolute: the installed programs are not run from the staging directory'
                  % (opt['libdir'], opt['bindir']))

        # bindir: the tools, each running against the installed library.
        since = len(failures)
        examples = {'migstream-demo', 'kvm-migrate'}
        planned = sorted(os.path.basename(d) for d in plan.values()
                         if os.path.dirname(d) == os.path.join(prefix, opt['bindir']))
        have = sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []
        if have != planned:
            fail('bindir holds %s, meson planned %s' % (have, planned))
        for name in have:
            if name in examples and not opt['install_examples']:
                fail('%s is installed without -Dinstall_examples=true' % name)
            elif not name.startswith('migstream-') and name not in examples:
                fail('bindir holds %s, which is not a migstream-* tool' % name)
            exe = os.path.join(bindir, name)
            if not relocatable:
                continue
            where = loaded_from(exe, env)
            if where != installed_lib:
                fail('%s finds libmigstream.so.0 at %s, not the installed %s'
                     % (name, where, installed_lib))
            if where != installed_lib or name in examples or not name.startswith('migstream-'):
                continue
            p = run([exe, '--version'], env)
            if p.returncode != 0 or version not in p.stdout:
                fail('%s --version: exit %d: %s' % (name, p.returncode, p.stdout.strip()))
        tools = [n for n in have if n.startswith('migstream-') and n not in examples]
        if opt['tools'] and not tools:
            fail('no tool is installed')
        if not have:
            ok('bindir: nothing installed (-Dtools=false)', since)
        else:
            ok('bindir: %s%s' % (' '.join(have), '; each tool finds the installed '
                                 'libmigstream.so.0 through its run path and runs --version, '
                                 'LD_LIBRARY_PATH unset' if relocatable else ''), since)
        since = len(failures)
        if not opt['install_examples']:
            for root, _, files in os.walk(dest):
                for n in examples.intersection(files):
                    fail('example %s is installed (%s)' % (n, root))
            ok('no example installed (-Dinstall_examples=false)', since)

        # Man pages and the documents they cite.
        since = len(failures)
        pages = 0
        cited = set()
        schemas = set()
        for section in ('man1', 'man3'):
            d = os.path.join(mandir, section)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                with open(os.path.join(d, name)) as f:
                    text = f.read()
                if text.startswith('.so '):
                    continue
                pages += 1
                for m in re.finditer(r'(?<![\w/.])docs/[\w./-]*\w', text):
                    fail('%s/%s cites %s of the source tree' % (section, name, m.group(0)))
                for m in re.finditer(r'(/[\w./+-]*/doc/libmigstream)/([\w./-]*\w)', text):
                    if m.group(1) != docdir:
                        fail('%s/%s cites %s, not the installed %s'
                             % (section, name, m.group(0), docdir))
                    cited.add(m.group(2))
                for m in re.finditer(r'(/[\w./+-]*/libmigstream/schemas)/([\w.-]*\w)', text):
                    if m.group(1) != schemadir:
                        fail('%s/%s cites %s, not the installed %s'
                             % (section, name, m.group(0), schemadir))
                    schemas.add(m.group(2))
        for t in tools:
            if not os.path.isfile(os.path.join(mandir, 'man1', t + '.1')):
                fail('%s has no installed man page' % t)
        if not os.path.isfile(os.path.join(mandir, 'man3', 'libmigstream.3')):
            fail('libmigstream(3) is not installed')
        for name in sorted(cited):
            if not os.path.exists(os.path.join(staged(docdir), name)):
                fail('a man page cites %s/%s, which is not installed' % (docdir, name))
        for name in sorted(schemas):
            if not os.path.exists(os.path.join(staged(schemadir), name)):
                fail('a man page cites %s/%s, which is not installed' % (schemadir, name))
        ok('%d man pages; the documents they cite, installed in %s: %s'
           % (pages, docdir, ' '.join(sorted(cited))), since)

        # A program of the library's user: pkg-config, no LD_LIBRARY_PATH.
        pc_dir = os.path.join(libdir, 'pkgconfig')
        pc_env = dict(env, PKG_CONFIG_PATH=pc_dir)
        pc = [pkg_config, '--define-variable=prefix=' + staged(prefix),
              '--define-variable=libdir=' + libdir,
              '--define-variable=includedir=' + staged(os.path.join(prefix, opt['includedir'])),
              'libmigstream']
        flags = run(pc[:1] + ['--cflags', '--libs'] + pc[1:], pc_env)
        lib = run(pc[:1] + ['--variable=libdir'] + pc[1:], pc_env)
        if flags.returncode != 0 or lib.returncode != 0:
            fail('pkg-config libmigstream: %s%s' % (flags.stdout, lib.stdout))
        else:
            src = os.path.join(dest, 'prog.c')
            exe = os.path.join(dest, 'prog')
            with open(src, 'w') as f:
                f.write(PROGRAM)
            sanitize = [] if opt['b_sanitize'] == 'none' else ['-fsanitize=' + opt['b_sanitize']]
            cmd = cc + sanitize + [src, '-o', exe] + flags.stdout.split() + \
                ['-Wl,-rpath,' + lib.stdout.strip()]
            p = run(cmd, env)
            if p.returncode != 0:
                fail('%s: %s' % (' '.join(cmd), p.stdout))
            else:
                p = run([exe], env)
                got = p.stdout.split()
                if p.returncode != 0 or got[:1] != [version] or \
                        os.path.realpath(got[-1]) != installed_lib:
                    fail('a program built with pkg-config: exit %d: %s'
                         % (p.returncode, p.stdout.strip()))
                else:
                    ok('a program built with pkg-config --cflags --libs libmigstream '
                       'and -Wl,-rpath,$(pkg-config --variable=libdir) runs against %s'
                       % installed_lib)

        # The Python package.
        if python and relocatable:
            ext = [os.path.join(root, n) for root, _, files in os.walk(dest) for n in files
                   if n.startswith('_migstream') and n.endswith('.so')]
            if len(ext) != 1:
                fail('the Python extension is installed %d times: %s' % (len(ext), ext))
            elif not ext[0].startswith(staged(prefix) + '/'):
                print('note: the Python package is installed outside the prefix (%s), with an '
                      'absolute run path: it is not imported from the staging directory'
                      % ext[0][len(dest):])
            else:
                site = os.path.dirname(os.path.dirname(ext[0]))
                py_env = dict(env, PYTHONPATH=site, PYTHONDONTWRITEBYTECODE='1')
                if asan_runtime:
                    py_env['LD_PRELOAD'] = asan_runtime
                    py_env['ASAN_OPTIONS'] = 'detect_leaks=0'
                code = ('import migstream, os; print(migstream.__file__); '
                        'print([l.split()[-1] for l in open("/proc/self/maps") '
                        'if "libmigstream.so" in l][0]); print(",".join(migstream.formats()))')
                p = run([python, '-c', code], py_env, cwd=dest)
                out = p.stdout.split('\n')
                if p.returncode != 0 or len(out) < 3 or \
                        not out[0].startswith(site + '/') or \
                        os.path.realpath(out[1]) != installed_lib:
                    fail('import migstream with PYTHONPATH=%s: exit %d: %s'
                         % (site, p.returncode, p.stdout.strip()))
                else:
                    ok('import migstream from %s loads %s (formats: %s)'
                       % (site, installed_lib, out[2]))
    finally:
        shutil.rmtree(dest, ignore_errors=True)

    if failures:
        print('%d problems with the installed tree' % len(failures))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
