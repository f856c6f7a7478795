"""Where a planning model goes wrong at PD 5: its commit order, and the first wrong position.

    python scripts/probe_planning_order.py   (reads models/planning-diffusion; 60 PD-5 validation examples)
"""
import torch, unmask
from collections import Counter
from unmask.tasks import draw, get_task
torch.set_num_threads(1)
task = get_task("planning")
m = unmask.load("models/planning-diffusion")
ex = [e for e in draw(task, "validation", 600, 9) if e.pd == 5][:60]
firstwrong = Counter(); orders = Counter()
for e in ex:
    seq = []
    out = unmask.generate(m, [task.prompt(e)], on_step=lambda s, c, cm: seq.append(cm[0, 24:].nonzero().flatten().tolist()[0]))
    ans = out.tokens[0].tolist(); truth = task.answer(e)
    ok = ans == truth
    orders[(tuple(seq[:5]), ok)] += 1
    if not ok:
        firstwrong[next(p for p in seq if ans[p] != truth[p])] += 1
for k, v in orders.most_common(6): print(k, v)
print("first wrong position among failures:", dict(firstwrong))
