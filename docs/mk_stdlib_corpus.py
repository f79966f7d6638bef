"""Write a corpus of Python standard-library docstrings (one document per docstring, paragraphs as
lines) for the README training curve:  python docs/mk_stdlib_corpus.py OUT.txt"""
import ast, pathlib, sys, re
root = pathlib.Path(sys.prefix) / "lib/python3.11"
docs = []
for f in sorted(root.glob("**/*.py")):
    if any("test" in part for part in f.parts[-3:]) or "site-packages" in str(f) or "idlelib" in str(f) or "lib2to3" in str(f): continue
    try: tree = ast.parse(f.read_text(encoding="utf-8"))
    except Exception: continue
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            d = ast.get_docstring(node)
            if not d: continue
            paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", d) if p.strip()]
            paras = [p for p in paras if len(p.split()) >= 4 and not p.startswith(">>>")]
            if len(paras) >= 1 and sum(len(p.split()) for p in paras) >= 12:
                docs.append("\n".join(paras))
pathlib.Path(sys.argv[1]).write_text("\n\n".join(docs) + "\n")
print(len(docs))
