"""The binding's ctypes mirror of include/zenith.h (bindings/python/zenith/_lib.py, also used by
these tests and the benchmark) against the C compiler, the ground truth:

* every public struct: sizeof, alignment and each field's offset, from tests/abi/c/layout.c (the
  helper the Rust ABI check compiles), built here into a shared object and read through its
  `abi_layout_rows` table; and each field's size, from a small generated C program;
* every `ZENITH_*` macro (and the DLPack values the binding uses): the value the compiler sees;
* every `zenith_*` function of the header: declared, with as many arguments as its prototype,
  each (and the result) of the C type's size, pointer-ness and signedness.

A missing C compiler fails these tests: they are the only check of the Python side of the ABI.
"""

import ctypes
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, _lib

INCLUDE = REPO / "include"
HEADER = INCLUDE / "zenith.h"
LAYOUT_HELPER = REPO / "tests" / "abi" / "c" / "layout.c"

# ctypes' type codes: signed and unsigned integers (anything else here is a pointer or a float).
SIGNED_CODES = set("bhilq")
UNSIGNED_CODES = set("BHILQ?")


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc")
    if not cc:
        pytest.fail("no C compiler (cc, or $CC): install build-essential", pytrace=False)
    return cc


def compile_c(source, out, *flags) -> None:
    """Compiles `source` (a path) against include/ with the house flags; fails with the log."""
    command = [compiler(), "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}", *flags, str(source), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"


def run_c_program(tmp_path, name: str, body: str) -> list:
    """Compiles and runs a C program printing tab-separated lines; returns them split."""
    source = tmp_path / f"{name}.c"
    prelude = '#include <stdbool.h>\n#include <stdio.h>\n#include "zenith.h"\n\n'
    source.write_text(f"{prelude}int main(void) {{\n{body}    return 0;\n}}\n")
    compile_c(source, tmp_path / name, "-Wno-type-limits")  # `(T)-1 < (T)0` tests signedness
    result = subprocess.run([str(tmp_path / name)], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


def header_text() -> str:
    """zenith.h without its comments."""
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


# ---- structs ------------------------------------------------------------------------------------


class LayoutRow(ctypes.Structure):
    """struct abi_layout_row of tests/abi/c/layout.c."""

    _fields_ = [("type", ctypes.c_char_p), ("what", ctypes.c_char_p), ("value", ctypes.c_size_t)]


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory) -> dict:
    """{(struct, "sizeof" | "alignof" | field): bytes} as the C compiler lays the structs out."""
    library = tmp_path_factory.mktemp("layout") / "liblayout.so"
    compile_c(LAYOUT_HELPER, library, "-shared", "-fPIC")
    helper = ctypes.CDLL(str(library))
    helper.abi_layout_rows.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    helper.abi_layout_rows.restype = ctypes.POINTER(LayoutRow)
    count = ctypes.c_size_t()
    rows = helper.abi_layout_rows(ctypes.byref(count))
    table = {(rows[i].type.decode(), rows[i].what.decode()): rows[i].value for i in range(count.value)}
    assert len(table) == count.value > 0
    return table


def ctypes_layout() -> dict:
    """The same table from _lib's ctypes structs."""
    table = {}
    for name, struct in _lib.STRUCTS.items():
        table[(name, "sizeof")] = ctypes.sizeof(struct)
        table[(name, "alignof")] = ctypes.alignment(struct)
        for field, _ in struct._fields_:
            table[(name, field)] = getattr(struct, field).offset
    return table


def test_every_struct_has_the_c_compilers_layout(c_layout):
    mirror = ctypes_layout()
    problems = [
        f"{t}.{what}: C says {value}, ctypes says {mirror.get((t, what), 'nothing')}"
        for (t, what), value in sorted(c_layout.items())
        if mirror.get((t, what)) != value
    ]
    problems += [
        f"{t}.{what}: in _lib.py but not in tests/abi/c/layout.c" for (t, what) in sorted(set(mirror) - set(c_layout))
    ]
    assert not problems, "ctypes mirror (bindings/python/zenith/_lib.py) vs C:\n" + "\n".join(problems)


def test_the_mirror_checks_every_field_it_declares(c_layout):
    """Field names line up one to one, so a field renamed on either side is reported."""
    for name, struct in _lib.STRUCTS.items():
        c_fields = {what for (t, what) in c_layout if t == name} - {"sizeof", "alignof"}
        assert c_fields == {field for field, _ in struct._fields_}, name


def test_every_field_has_the_c_compilers_size(c_layout, tmp_path):
    """Sizes catch what offsets cannot: a last field narrowed into the struct's tail padding."""
    fields = sorted((t, what) for (t, what) in c_layout if what not in ("sizeof", "alignof"))
    typedefs = "".join(f"    typedef struct {t} {t};\n" for t in ("ArrowSchema", "ArrowArray", "ArrowArrayStream", "ArrowDeviceArray", "ArrowDeviceArrayStream"))
    body = typedefs + "".join(f'    printf("%s\\t%s\\t%zu\\n", "{t}", "{f}", sizeof((({t} *)0)->{f}));\n' for t, f in fields)
    c_sizes = {(t, f): int(size) for t, f, size in run_c_program(tmp_path, "field_sizes", body)}
    mirror = {(t, f): getattr(_lib.STRUCTS[t], f).size for t, f in fields if t in _lib.STRUCTS}
    assert mirror == c_sizes


# ---- macros -------------------------------------------------------------------------------------

DLPACK_NAMES = ["kDLCPU", "kDLInt", "kDLUInt", "kDLFloat", "kDLBfloat", "kDLComplex", "kDLBool",
                "DLPACK_FLAG_BITMASK_READ_ONLY", "DLPACK_FLAG_BITMASK_IS_COPIED"]


def test_every_macro_has_the_c_compilers_value(tmp_path):
    macros = re.findall(r"^#define (ZENITH_\w+)[ \t]+\S", HEADER.read_text(), re.MULTILINE)
    assert len(macros) > 30, macros
    names = macros + DLPACK_NAMES
    body = "".join(f'    printf("%s\\t%lld\\n", "{n}", (long long)({n}));\n' for n in names)
    c_values = {name: int(value) for name, value in run_c_program(tmp_path, "macros", body)}
    assert {n: getattr(_lib, n, None) for n in names} == c_values
    stale = sorted(n for n in vars(_lib) if n.startswith("ZENITH_") and n not in c_values)
    assert not stale, f"constants in _lib.py that zenith.h does not define: {stale}"


# ---- functions ----------------------------------------------------------------------------------


def header_prototypes() -> dict:
    """{function name: (return type, [parameter types])} of every zenith_* function."""
    prototypes = {}
    for match in re.finditer(r"\n([A-Za-z_][\w \*]*?)\b(zenith_\w+)\s*\(([^;]*?)\);", header_text()):
        result, name, params = " ".join(match.group(1).split()), match.group(2), " ".join(match.group(3).split())
        types = []
        if params != "void":
            for param in params.split(","):
                declaration = re.match(r"^(.*?)\s*\b\w+$", param.strip())  # drop the parameter name
                assert declaration, f"{name}: cannot read parameter {param!r}"
                types.append(declaration.group(1))
        prototypes[name] = (result, types)
    return prototypes


def ctypes_facts(ctype) -> tuple:
    """(size, is a pointer, is signed) of an argtype or restype; None is C's void."""
    if ctype is None:
        return (0, False, False)
    if ctype in (ctypes.c_void_p, ctypes.c_char_p) or issubclass(ctype, (ctypes._Pointer, ctypes._CFuncPtr)):
        return (ctypes.sizeof(ctype), True, False)
    code = ctype._type_
    assert code in SIGNED_CODES | UNSIGNED_CODES, f"{ctype} is not an integer type"
    return (ctypes.sizeof(ctype), False, code in SIGNED_CODES)


def test_every_function_is_declared_with_the_c_types(tmp_path):
    prototypes = header_prototypes()
    assert len(prototypes) > 60
    assert sorted(_lib.SIGNATURES) == sorted(prototypes), "functions of zenith.h vs _lib.SIGNATURES"

    # Each distinct C type once: its size, whether it is a pointer, whether it is signed.
    c_types = sorted({t for result, params in prototypes.values() for t in [result, *params] if t != "void"})
    lines = []
    for k, t in enumerate(c_types):
        # Function-pointer typedefs (the header names them *_callback) carry no "*" of their own.
        pointer = "*" in t or t.endswith("_callback")
        signed = "0" if pointer else f"(({t})-1 < ({t})0)"
        lines.append(f'    printf("%d\\t%zu\\t%d\\t%d\\n", {k}, sizeof({t}), {int(pointer)}, (int){signed});\n')
    facts = {c_types[int(k)]: (int(size), bool(int(p)), bool(int(s))) for k, size, p, s in run_c_program(tmp_path, "types", "".join(lines))}
    facts["void"] = (0, False, False)

    problems = []
    for name, (result, params) in sorted(prototypes.items()):
        argtypes, restype = _lib.SIGNATURES[name]
        if len(argtypes) != len(params):
            problems.append(f"{name}: {len(params)} parameters in C, {len(argtypes)} argtypes")
            continue
        for position, (c_type, ctype) in enumerate(zip([result, *params], [restype, *argtypes])):
            where = "result" if position == 0 else f"argument {position}"
            if facts[c_type] != ctypes_facts(ctype):
                problems.append(f"{name} {where}: C {c_type!r} is (size, pointer, signed) {facts[c_type]}, ctypes {ctype} {ctypes_facts(ctype)}")
    assert not problems, "\n".join(problems)


def test_the_library_under_test_exports_every_declared_function(lib):
    """conftest's library loaded through _lib.load: every declaration found its symbol."""
    for name, (argtypes, restype) in _lib.SIGNATURES.items():
        fn = getattr(lib, name)
        assert (list(fn.argtypes), fn.restype) == (argtypes, restype), name
