"""DI diagnosis: synthesise a pool with given options, report pixel stats, train a student by KD, eval."""
import sys, time, json, torch, torch.nn.functional as F
from dfkd_lib.data import dataset_spec
from dfkd_lib.teachers import default_teacher_path, load_teacher, real_test_loader
from dfkd_lib.utils import autocast
from dfkd_lib.synthesizers import deep_inversion
from dfkd_lib.models import build_classifier
from dfkd_lib.hooks import BNStatistics
from dfkd_lib.losses import kd_loss
torch.manual_seed(0)
name = sys.argv[1]; opts = json.loads(sys.argv[2]); nb = int(sys.argv[3]); ksteps = int(sys.argv[4]); T = float(sys.argv[5])
spec = dataset_spec("fashion-mnist")
teacher, _ = load_teacher(default_teacher_path("fashion-mnist"), "cpu")
teacher.eval().requires_grad_(False)
t0 = time.time(); xs = []; ys = []
for b in range(nb):
    tg = (torch.arange(64) + b * 64) % 10
    r = deep_inversion(teacher, tg, spec, seed=1000 + b, progress=False, amp="bf16", **opts)
    xs.append(r.images); ys.append(tg)
x = torch.cat(xs); y = torch.cat(ys)
tsyn = time.time() - t0
lo, hi = spec.pixel_bounds()
with BNStatistics(teacher) as bn, torch.no_grad():
    tl = teacher(x[:256])
    per = bn.per_layer()
stats = dict(pix_mean=float(spec.denormalize(x).mean()), std=float(x.std()), black=float((x <= lo + 0.05).float().mean()),
             teacher_acc=float((tl.argmax(1) == y[:256]).float().mean()), bn_first=per[0], bn_sum=sum(per),
             tmaxp=float(F.softmax(tl, 1).max(1).values.mean()), syn_s=tsyn)
# real reference
test = real_test_loader("fashion-mnist", limit=2000)
xr = next(iter(real_test_loader("fashion-mnist", batch_size=256)))[0]
with BNStatistics(teacher) as bn, torch.no_grad():
    teacher(xr); per_r = bn.per_layer()
stats.update(real_std=float(xr.std()), real_black=float((xr <= lo + 0.05).float().mean()), real_bn_first=per_r[0], real_bn_sum=sum(per_r))
print(name, json.dumps({k: round(v, 3) for k, v in stats.items()}), flush=True)
student = build_classifier("resnet18", 10, 1, 16)
opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, ksteps)
g = torch.Generator().manual_seed(0)
def ev(train_bn=False):
    student.eval(); c = n = 0; hist = torch.zeros(10)
    with torch.no_grad():
        for xb, yb in test:
            p = student(xb).argmax(1); c += (p == yb).sum().item(); n += len(yb); hist += torch.bincount(p, minlength=10)
    student.train(); return c / n, float(hist.max() / n)
t1 = time.time()
for s in range(ksteps):
    idx = torch.randint(0, len(x), (64,), generator=g)
    xb = x[idx]
    # DI jitter/flip augmentation? no: plain pool, as the engine does
    with torch.no_grad(), autocast(torch.device("cpu"), "bf16"):
        tlog = teacher(xb).float()
    with autocast(torch.device("cpu"), "bf16"):
        sl = student(xb).float()
    loss = kd_loss(sl, tlog, T)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if (s + 1) % max(1, ksteps // 4) == 0:
        acc, top = ev()
        print(f"{name} step {s+1} loss {loss.item():.3f} acc {acc:.4f} top-class-share {top:.2f} ({time.time()-t1:.0f}s)", flush=True)
