import sys, time, json, torch, torch.nn.functional as F
from dfkd_lib.data import dataset_spec
from dfkd_lib.teachers import default_teacher_path, load_teacher, real_test_loader
from dfkd_lib.synthesizers import deep_inversion
from dfkd_lib.hooks import BNStatistics
name = sys.argv[1]; opts = json.loads(sys.argv[2]); nb = int(sys.argv[3])
spec = dataset_spec("fashion-mnist")
teacher, _ = load_teacher(default_teacher_path("fashion-mnist"), "cpu"); teacher.eval().requires_grad_(False)
t0 = time.time(); xs, ys = [], []
for b in range(nb):
    tg = (torch.arange(64) + b * 64) % 10
    r = deep_inversion(teacher, tg, spec, seed=1000 + b, progress=False, amp=None, **opts)
    xs.append(r.images); ys.append(tg)
x, y = torch.cat(xs), torch.cat(ys)
torch.save({"x": x, "y": y}, f"/tmp/di/pool_{name}.pt")
lo, hi = spec.pixel_bounds()
with BNStatistics(teacher) as bn, torch.no_grad():
    tl = teacher(x[:256]); per = bn.per_layer()
print(name, json.dumps(dict(pix_mean=round(float(spec.denormalize(x).mean()),3), std=round(float(x.std()),3),
      black=round(float((x <= lo + 0.05).float().mean()),3), teacher_acc=float((tl.argmax(1) == y[:256]).float().mean()),
      bn_first=round(per[0],3), bn_sum=round(sum(per),2), tmaxp=round(float(F.softmax(tl, 1).max(1).values.mean()),3), syn_s=round(time.time()-t0))), flush=True)
