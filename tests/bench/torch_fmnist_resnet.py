# The reference pipeline of /work/shared/bench/torch_pipeline.py (dense
# training -> prune 8x8 channel blocks, L2, per layer, density 0.5, first conv
# dense -> masked fine-tuning) on bsp's fmnist-resnet architecture
# (src/zoo/fmnist.cpp), for tests/bench/fmnist_pipeline.sh. Same recipe, same
# output lines. Usage: python3 torch_fmnist_resnet.py EPOCHS FINETUNE_EPOCHS
import gzip, numpy as np, time, torch, torch.nn as nn, sys
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2); torch.manual_seed(0)
D='/usr/share/datasets/fashion-mnist/'
def imgs(f): return np.frombuffer(gzip.open(D+f).read(),np.uint8,offset=16).reshape(-1,1,28,28).astype(np.float32)/255.
def labs(f): return np.frombuffer(gzip.open(D+f).read(),np.uint8,offset=8).astype(np.int64)
Xtr,Ytr,Xte,Yte=imgs('train-images-idx3-ubyte.gz'),labs('train-labels-idx1-ubyte.gz'),imgs('t10k-images-idx3-ubyte.gz'),labs('t10k-labels-idx1-ubyte.gz')
m=(Xtr.mean()); s=Xtr.std(); Xtr=(Xtr-m)/s; Xte=(Xte-m)/s
Xtr,Ytr,Xte,Yte=map(torch.from_numpy,(Xtr,Ytr,Xte,Yte))

class Block(nn.Module):
  def __init__(s, cin, w, stride):
    super().__init__()
    s.a=nn.Sequential(nn.Conv2d(cin,w,3,stride,1,bias=False),nn.BatchNorm2d(w),nn.ReLU())
    s.b=nn.Sequential(nn.Conv2d(w,w,3,1,1,bias=False),nn.BatchNorm2d(w))
    s.sc=nn.Sequential(nn.Conv2d(cin,w,1,stride,0,bias=False),nn.BatchNorm2d(w)) if stride!=1 or cin!=w else nn.Identity()
    s.relu=nn.ReLU()
  def forward(s,x): return s.relu(s.b(s.a(x))+s.sc(x))

def resnet():
  layers=[nn.Conv2d(1,32,3,1,1,bias=False),nn.BatchNorm2d(32),nn.ReLU()]
  cin=32
  for w,n,st in ((32,1,1),(64,2,2),(128,2,2)):
    for i in range(n): layers.append(Block(cin,w,st if i==0 else 1)); cin=w
  layers+=[nn.AdaptiveAvgPool2d(1),nn.Flatten(),nn.Linear(128,10)]
  return nn.Sequential(*layers)

net=resnet()
lossf=nn.CrossEntropyLoss(); masks={}
def evaluate():
  net.eval(); c=0
  with torch.no_grad():
    for i in range(0,10000,500): c+=(net(Xte[i:i+500]).argmax(1)==Yte[i:i+500]).sum().item()
  return c/100
def train(epochs,lr):
  opt=torch.optim.SGD(net.parameters(),lr=lr,momentum=0.9,weight_decay=5e-4,nesterov=True)
  sched=torch.optim.lr_scheduler.OneCycleLR(opt,lr,total_steps=epochs*(60000//128))
  for ep in range(epochs):
    t=time.time(); net.train(); perm=torch.randperm(60000)
    for i in range(60000//128):
      idx=perm[i*128:(i+1)*128]; opt.zero_grad(); l=lossf(net(Xtr[idx]),Ytr[idx]); l.backward(); opt.step(); sched.step()
      with torch.no_grad():
        for p,mk in masks.items(): p.mul_(mk)
    print(f"  epoch {ep} train_s {time.time()-t:.1f} test_acc {evaluate():.2f}",flush=True)
E=int(sys.argv[1]); F=int(sys.argv[2])
print("dense"); train(E,0.1); dense=evaluate()
first=True
for mod in net.modules():
  if isinstance(mod,(nn.Conv2d,nn.Linear)):
    if first: first=False; continue
    w=mod.weight.data; O,I=w.shape[0],w.shape[1]
    if O%8 or I%8: continue
    ww=w.reshape(O,I,-1)
    nrm=ww.pow(2).sum(2).reshape(O//8,8,I//8,8).sum((1,3))
    k=nrm.numel()//2; thr=nrm.flatten().kthvalue(k).values
    bm=(nrm>thr).float(); mk=bm.repeat_interleave(8,0).repeat_interleave(8,1)
    mk=mk.reshape(O,I,*([1]*(w.dim()-2))).expand_as(w).contiguous(); masks[mod.weight]=mk; w.mul_(mk)
print(f"pruned (no finetune) acc {evaluate():.2f}")
print("finetune"); train(F,0.02)
print(f"RESULT dense {dense:.2f} pruned+finetuned {evaluate():.2f}")
