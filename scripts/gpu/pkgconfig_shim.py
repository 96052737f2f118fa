#!/usr/bin/env python3
"""A minimal pkg-config for machines that have none (the lent GPU machine has no Debian -dev
packages, so possibly no pkg-config either). scripts/gpu/build.sh hands it to CMake as
PKG_CONFIG_EXECUTABLE only when neither pkg-config nor pkgconf is on the PATH.

It answers what CMake's FindPkgConfig / pkg_check_modules asks: --version, --exists,
--modversion, --variable=NAME, --cflags[-only-I|-only-other], --libs[-only-L|-only-l|-only-other],
with module arguments such as `libpcre2-8` or `libpcre2-8 >= 10`. It reads .pc files from
PKG_CONFIG_PATH, then PKG_CONFIG_LIBDIR (or the usual system folders), expands ${var} and
${pcfiledir}, and follows Requires (and Requires.private with --static).
"""
import os
import re
import shlex
import sys

VERSION = "0.29.2"  # what it claims to be (CMake only checks that --version answers)
DEFAULT_DIRS = [
    "/usr/local/lib/x86_64-linux-gnu/pkgconfig", "/usr/local/lib/pkgconfig", "/usr/local/share/pkgconfig",
    "/usr/lib/x86_64-linux-gnu/pkgconfig", "/usr/lib64/pkgconfig", "/usr/lib/pkgconfig", "/usr/share/pkgconfig",
]


def search_dirs():
    dirs = [d for d in os.environ.get("PKG_CONFIG_PATH", "").split(":") if d]
    libdir = os.environ.get("PKG_CONFIG_LIBDIR")
    dirs += [d for d in libdir.split(":") if d] if libdir is not None else DEFAULT_DIRS
    return dirs


def find_pc(name):
    for d in search_dirs():
        path = os.path.join(d, name + ".pc")
        if os.path.isfile(path):
            return path
    return None


def expand(value, variables, depth=0):
    if depth > 50:
        raise ValueError("variable expansion too deep")
    def repl(m):
        return expand(variables.get(m.group(1), ""), variables, depth + 1)
    return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", repl, value).replace("$$", "$")


def parse_pc(path):
    variables = {"pcfiledir": os.path.dirname(os.path.abspath(path))}
    fields = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.match(r"^([A-Za-z0-9_.]+)\s*([=:])\s*(.*)$", line)
            if not m:
                continue
            key, kind, value = m.groups()
            if kind == "=":
                variables[key] = expand(value, variables)
            else:
                fields[key] = expand(value, variables)
    return variables, fields


def version_key(v):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[A-Za-z]+", v)]


def satisfies(have, op, want):
    a, b = version_key(have), version_key(want)
    return {"=": a == b, "==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]


def parse_requires(text):
    """'a >= 1, b' -> [('a', '>=', '1'), ('b', None, None)]"""
    out = []
    tokens = text.replace(",", " ").split()
    ops = ("=", "==", "!=", ">=", "<=", ">", "<")
    i = 0
    while i < len(tokens):
        name, op, ver = tokens[i], None, None
        if i + 2 < len(tokens) and tokens[i + 1] in ops:
            op, ver = tokens[i + 1], tokens[i + 2]
            i += 3
        else:
            i += 1
        out.append((name, op, ver))
    return out


class Module:
    def __init__(self, name):
        self.name = name
        self.path = find_pc(name)
        if self.path is None:
            raise LookupError(f"Package {name} was not found in the pkg-config search path.\n"
                              f"Perhaps you should add the directory containing `{name}.pc'\n"
                              f"to the PKG_CONFIG_PATH environment variable")
        self.variables, self.fields = parse_pc(self.path)

    @property
    def version(self):
        return self.fields.get("Version", "")


def collect(modules, static):
    """The modules and everything they require, each once, in link order."""
    seen, order = set(), []
    def visit(mod):
        if mod.name in seen:
            return
        seen.add(mod.name)
        order.append(mod)
        reqs = parse_requires(mod.fields.get("Requires", ""))
        if static:
            reqs += parse_requires(mod.fields.get("Requires.private", ""))
        for name, op, ver in reqs:
            dep = Module(name)
            if op and not satisfies(dep.version, op, ver):
                raise LookupError(f"Package '{mod.name}' requires '{name} {op} {ver}' but version of {name} is {dep.version}")
            visit(dep)
    for m in modules:
        visit(m)
    return order


SYSTEM_INCLUDE_DIRS = ("/usr/include",)
SYSTEM_LIB_DIRS = ("/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu")


def is_system_flag(f):
    """Like pkg-config, leave out -I and -L flags that name the compiler's own folders."""
    if f.startswith("-I") and not os.environ.get("PKG_CONFIG_ALLOW_SYSTEM_CFLAGS"):
        return os.path.normpath(f[2:]) in SYSTEM_INCLUDE_DIRS
    if f.startswith("-L") and not os.environ.get("PKG_CONFIG_ALLOW_SYSTEM_LIBS"):
        return os.path.normpath(f[2:]) in SYSTEM_LIB_DIRS
    return False


def flags(mods, field, static):
    out = []
    for m in mods:
        text = m.fields.get(field, "")
        if field == "Libs" and static:
            text += " " + m.fields.get("Libs.private", "")
        for f in shlex.split(text):
            if is_system_flag(f):
                continue
            if f not in out or not (f.startswith("-I") or f.startswith("-L")):
                out.append(f)
    return out


def main(argv):
    opts, names = [], []
    for a in argv:
        (opts if a.startswith("--") else names).append(a)
    if "--version" in opts:
        print(VERSION)
        return 0
    static = "--static" in opts
    errors = "--print-errors" in opts or "--short-errors" in opts or "--exists" not in opts
    # Module arguments: names, each optionally followed by an operator and a version.
    wanted = parse_requires(" ".join(names))
    if not wanted:
        if "--exists" in opts:
            return 0
        sys.stderr.write("Must specify package names on the command line\n")
        return 1
    try:
        mods = []
        for name, op, ver in wanted:
            m = Module(name)
            if op and not satisfies(m.version, op, ver):
                raise LookupError(f"Requested '{name} {op} {ver}' but version of {name} is {m.version}")
            mods.append(m)
        allmods = collect(mods, static)
    except (LookupError, ValueError, OSError) as e:
        if errors:
            sys.stderr.write(str(e) + "\n")
        return 1

    out = []
    for o in opts:
        if o == "--modversion":
            for m in mods:
                print(m.version)
            return 0
        if o.startswith("--variable="):
            var = o.split("=", 1)[1]
            print(" ".join(m.variables.get(var, "") for m in mods))
            return 0
        if o == "--cflags":
            out += flags(allmods, "Cflags", static)
        elif o == "--cflags-only-I":
            out += [f for f in flags(allmods, "Cflags", static) if f.startswith("-I")]
        elif o == "--cflags-only-other":
            out += [f for f in flags(allmods, "Cflags", static) if not f.startswith("-I")]
        elif o == "--libs":
            out += flags(allmods, "Libs", static)
        elif o == "--libs-only-L":
            out += [f for f in flags(allmods, "Libs", static) if f.startswith("-L")]
        elif o == "--libs-only-l":
            out += [f for f in flags(allmods, "Libs", static) if f.startswith("-l")]
        elif o == "--libs-only-other":
            out += [f for f in flags(allmods, "Libs", static) if not (f.startswith("-l") or f.startswith("-L"))]
        # Anything else (--exists, --print-errors, --short-errors, --static, --keep-system-*) needs no output.
    if any(o.startswith(("--cflags", "--libs")) for o in opts):
        print(" ".join(shlex.quote(f) for f in out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
