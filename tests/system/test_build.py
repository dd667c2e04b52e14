"""The CI format step (`.ci/run format`, which runs `make format-check`) on a copy of the
tracked tree: it passes on a tree formatted with the repo's .clang-format and fails, naming
the file, as soon as one tracked C file is not. The copy is a git repository of its own
(the check lists files with git ls-files), formatted first with `make format`, so the
result does not depend on the state of the working tree under test."""
import os
import re
import shutil
import subprocess

import pytest

from harness import ROOT

# A make above us (make test -> make system) must not hand its jobserver to these.
ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def run(args, cwd, check=True):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                     r.stderr))
    return r


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A git repository holding every tracked file of ROOT (as in the working tree),
    formatted with make format."""
    d = str(tmp_path_factory.mktemp("tree"))
    files = run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree but not yet from the index
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(d, rel), follow_symlinks=False)
    run(["git", "-c", "init.defaultBranch=main", "init", "-q"], d)
    run(["git", "add", "-A"], d)
    run(["make", "--no-print-directory", "format"], d)
    return d


def ci_format(d):
    return run([os.path.join(d, ".ci", "run"), "format"], d, check=False)


def c_files(d):
    return run(["git", "ls-files", "*.c"], d).stdout.split()


@pytest.fixture
def mangled(tree):
    """Undoes a test's damage to the copy."""
    saved = {}

    def mangle(rel, fn):
        path = os.path.join(tree, rel)
        with open(path) as f:
            saved[path] = f.read()
        with open(path, "w") as f:
            f.write(fn(saved[path]))
    yield mangle
    for path, text in saved.items():
        with open(path, "w") as f:
            f.write(text)


def halve_indent(text):
    out, n = re.subn(r"(?m)^    (?=\S)", "  ", text)
    assert n > 0, "nothing indented to mangle"
    return out


def test_ci_format_step_passes_on_a_formatted_tree(tree):
    r = ci_format(tree)
    assert r.returncode == 0, r.stdout + r.stderr
    # It looked at the tracked C files, not at nothing.
    assert "%d files formatted" % len(run(["git", "ls-files", "*.c", "*.h"], tree)
                                      .stdout.split()) in r.stdout, r.stdout


def test_ci_format_step_fails_on_one_mangled_c_file(tree, mangled):
    rel = next(f for f in c_files(tree) if f.startswith("common/"))
    mangled(rel, halve_indent)
    r = ci_format(tree)
    assert r.returncode != 0, "the format step passed an unformatted %s:\n%s" % (rel, r.stdout)
    assert rel in r.stderr, r.stderr


def test_ci_format_step_fails_on_a_line_joined_in_a_header(tree, mangled):
    rel = next(f for f in run(["git", "ls-files", "*.h"], tree).stdout.split()
               if f.startswith("common/"))
    # Two declarations on one line (outside any comment): no indentation involved.
    def join(text):
        out, n = re.subn(r"(?m)^([A-Za-z][^\n]*\);)\n(?=[A-Za-z])", r"\1 ", text, count=1)
        assert n == 1, "no two declarations in a row in " + rel
        return out
    mangled(rel, join)
    r = ci_format(tree)
    assert r.returncode != 0, "the format step passed an unformatted %s" % rel
    assert rel in r.stderr, r.stderr


def test_ci_format_step_ignores_untracked_files(tree):
    path = os.path.join(tree, "common", "scratch_untracked.c")
    with open(path, "w") as f:
        f.write("int   scratch ( void ) {return 0;}\n")
    try:
        r = ci_format(tree)
    finally:
        os.remove(path)
    assert r.returncode == 0, r.stdout + r.stderr
