import sys, time, json, torch, torch.nn.functional as F
from dfkd_lib.data import dataset_spec
from dfkd_lib.teachers import default_teacher_path, load_teacher, real_test_loader
from dfkd_lib.utils import autocast
from dfkd_lib.models import build_classifier
from dfkd_lib.losses import kd_loss
pool = sys.argv[1]; ksteps = int(sys.argv[2]); T = float(sys.argv[3]); aug = int(sys.argv[4])
d = torch.load(f"/tmp/di/pool_{pool}.pt"); x = d["x"]
spec = dataset_spec("fashion-mnist")
teacher, _ = load_teacher(default_teacher_path("fashion-mnist"), "cpu"); teacher.eval().requires_grad_(False)
torch.manual_seed(0)
student = build_classifier("resnet18", 10, 1, 16)
opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, ksteps)
g = torch.Generator().manual_seed(0)
test = real_test_loader("fashion-mnist", limit=2000)
lo, hi = spec.pixel_bounds()
def ev(bn_train=False):
    student.eval()
    if bn_train:
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm2d): m.train(); m.track_running_stats_bak = m.momentum; m.momentum = 0.0
    c = n = 0; hist = torch.zeros(10)
    with torch.no_grad():
        for xb, yb in test:
            p = student(xb).argmax(1); c += (p == yb).sum().item(); n += len(yb); hist += torch.bincount(p, minlength=10)
    if bn_train:
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm2d): m.momentum = m.track_running_stats_bak
    student.train(); return round(c / n, 4), round(float(hist.max() / n), 2)
def augment(xb):
    # random crop with padding 4 (pad with the black background value) and horizontal flip, per batch element
    n = xb.shape[0]
    p = F.pad(xb, (4, 4, 4, 4), value=float(lo.flatten()[0]))
    i = torch.randint(0, 9, (n,), generator=g); j = torch.randint(0, 9, (n,), generator=g)
    out = torch.stack([p[k, :, i[k]:i[k]+32, j[k]:j[k]+32] for k in range(n)])
    flip = torch.rand(n, generator=g) < 0.5
    out[flip] = out[flip].flip(3)
    return out
t1 = time.time()
for s in range(ksteps):
    xb = x[torch.randint(0, len(x), (64,), generator=g)]
    if aug: xb = augment(xb)
    with torch.no_grad(), autocast(torch.device("cpu"), None):
        tlog = teacher(xb).float()
    with autocast(torch.device("cpu"), None):
        sl = student(xb).float()
    loss = kd_loss(sl, tlog, T)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if (s + 1) % max(1, ksteps // 2) == 0:
        print(f"{pool} T={T} aug={aug} step {s+1} loss {loss.item():.3f} eval-BN {ev()} batch-BN(diagnostic) {ev(True)} ({time.time()-t1:.0f}s)", flush=True)
