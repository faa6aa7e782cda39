"""The warning for a complex value cast to a real dtype, against PyTorch 2.13, in fresh processes (it is once a
process): PyTorch's ``TORCH_WARN_ONCE`` warns at the first such cast, whichever op casts (``copy_``, ``to``,
``float()``, ``double()``, ``type()``, ``x[...] = z``, ``x[0:2] = z``, ``fill_`` with a complex 0-d tensor),
recording or not, and never again in the process, even under ``simplefilter("always")``, or when the first
warning was ignored by the filters; a lone mask's one value is ``masked_fill_``'s number, never warned of. The category (UserWarning), the text (PyTorch's ends with where in its C++
source it was triggered) and the user's line it points at are compared too."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r'''
import json, sys, warnings
L = __import__(sys.argv[1])
first_filter, steps = sys.argv[2], sys.argv[3].split(",")
z = L.tensor([1 + 2j, 3 - 1j], dtype=L.complex64)

def step(kind):
    r = L.zeros(2, requires_grad=kind.endswith("+grad")) * 1 if kind.endswith("+grad") else L.zeros(2)
    kind = kind.replace("+grad", "")
    if kind == "copy": r.copy_(z)
    elif kind == "to": z.to(L.float32)
    elif kind == "float": z.float()
    elif kind == "double": z.double()
    elif kind == "type": z.type(L.float64)
    elif kind == "setitem": r[...] = z
    elif kind == "setslice": r[0:2] = z
    elif kind == "fill": r.fill_(L.tensor(1 + 1j))
    elif kind == "real copy": r.copy_(z.real)  # (no imaginary part dropped: never warns)
    elif kind == "complex to complex": z.to(L.complex128)
    elif kind == "mask fill": r[L.tensor([True, False])] = L.tensor(1 + 0j)  # (masked_fill_'s number: no copy_)
    elif kind == "index_put_ mask": r.index_put_((L.tensor([True, False]),), L.tensor(2 + 0j))

out = []
for i, kind in enumerate(steps):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(first_filter if i == 0 else "always")
        step(kind)  # THE LINE
    out.append([[w.category.__name__, str(w.message).split(" (Triggered internally")[0], w.lineno]
                for w in caught])
print(json.dumps(out))
'''

SEQUENCES = [
    "copy,copy,to,setitem",
    "setslice,float,double,type,fill",
    "fill,copy",
    "real copy,complex to complex,copy,copy",
    "copy+grad,setitem+grad,copy",
    "setitem+grad,to",
    "mask fill,index_put_ mask,mask fill+grad,copy,copy",
]


def _run(lib, first_filter, steps, tmp_path):
    path = tmp_path / f"warn_{lib}.py"
    path.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(path), lib, first_filter, steps], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("first_filter", ["always", "default", "ignore"])
@pytest.mark.parametrize("steps", SEQUENCES)
def test_the_imaginary_part_warning_is_once_a_process(steps, first_filter, tmp_path):
    pytest.importorskip("torch", reason="PyTorch (torch==2.13.0) is the test oracle; .ci/run installs it")  # (a child's)
    want = _run("torch", first_filter, steps, tmp_path)
    got = _run("distnn", first_filter, steps, tmp_path)
    assert got == want
    assert sum(map(len, want)) <= 1
