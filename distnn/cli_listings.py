"""``distnn datasets`` and ``distnn config-keys``: the listings (their parsers are in :mod:`distnn.cli_parser`)."""
from __future__ import annotations

from distnn.cli_common import _one_process_only


def cmd_datasets(args) -> int:
    from distnn.train.inference import describe_datasets

    if _one_process_only():  # (under mpiexec every rank printed the listing)
        return 0
    print(describe_datasets(), flush=True)
    return 0


def cmd_config_keys(args) -> int:
    from distnn.train.config import suggest_key
    from distnn.train.config_schema import SCHEMA, TABLES, describe_schema, describe_sections

    if args.all and args.tables:
        raise ValueError("config-keys: give section or key names, or --all (every key), not both")
    if not args.all and not args.tables:  # (every key is a long list: first the overview, to pick from)
        if _one_process_only():
            return 0
        print(describe_sections() + "\n\n'python -m distnn config-keys SECTION...' lists a section's keys, "
              "'--all' every key", flush=True)
        return 0
    lines = describe_schema().splitlines()
    described = []  # model.X / data.X: a model's argument or a dataset's option, which the schema does not list
    if args.tables:
        from distnn.train.open_keys import describe_open_key, open_key_names, open_key_problem

        known = [*TABLES, *SCHEMA]
        for name in args.tables:
            if name in known:
                continue
            text = describe_open_key(name)
            if text is not None:
                described.append(text)
                continue
            problem = open_key_problem(name)
            if problem:
                raise ValueError(problem)
            raise ValueError(f"no config section or key '{name}'{suggest_key(name, known + open_key_names())}; "
                             "sections: "
                             + ", ".join(t for t in TABLES if "." not in t)
                             + " ('python -m distnn config-keys' lists them)")
        lines = [line for line in lines if any(line.split()[0] == t or line.split()[0].startswith(t + ".")
                                               for t in args.tables)]
    if _one_process_only():  # (after the names are checked: a mistake is a usage error on every rank)
        return 0
    print("\n".join(lines + described), flush=True)
    return 0
