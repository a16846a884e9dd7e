"""Anchoring trial: the local recalibration of src/model/local.rs re-implemented on a
leave-one-city-out run's predictions, to try variants fast before writing them in Rust.

Usage (after `roofline cv ... --by city -o CV_DIR` over the six roof-top cities):

    P=CV_DIR/predictions.parquet NS=10 HOW=count AMT=20 PLEV=3 MIX=b ROB=2 \
        python3 bench/anchoring.py log-choose

MODE: metre (the linear map in metres), log (the line in ln(height)), log-shift, log-choose
(leave-one-out choice of nothing / shift / line, as roofline does). HOW=share|count, AMT the
share or count revealed, NS draws, PN / PLEV the slope and level priors, MIX=b metre intervals
scaled by the map's derivative (as roofline does), ROB=2 residuals winsorised at 2 robust sd, LSCALE=1 intervals scaled by the kernel mean of
the known buildings' |residual| (LKER length scale in m, LPW prior weight, LMIX the power of
the model's own spread kept beside it).
Needs geopandas, scipy. Prints MAE, 90 % coverage and median width per city, mean over draws.
"""
import numpy as np, pandas as pd, geopandas as gpd, sys, os
from scipy.spatial import cKDTree
BCV=dict(zip(['linz','tokyo-chiyoda','tokyo-setagaya','la-venice','rotterdam-delfshaven','lorup'],[3.15,6.98,1.60,1.48,3.25,1.60]))
d=gpd.read_parquet(os.environ['P'])
d=d[d.scenario=='none'].copy()
parts=[]
for city,g in d.groupby('city'):
    g=g.to_crs(g.estimate_utm_crs()); c=g.geometry.centroid; g=pd.DataFrame(g.drop(columns='geometry')); g['x']=c.x.values; g['y']=c.y.values; parts.append(g)
d=pd.concat(parts)
def conf(s,a=0.1):
    n=len(s); k=int(np.ceil((n+1)*(1-a)))-1
    return np.sort(s)[k] if k<n else np.inf
def gmap(x,y,prior,plev=None):
    plev=prior if plev is None else plev
    n=len(x)
    if n==0: return 0.,1.
    sh=n/(n+prior); sl=n/(n+plev); mx,my=x.mean(),y.mean(); sxx=((x-mx)**2).sum()
    if n<3 or sxx<1e-9: return sl*(my-mx),1.
    b=np.clip(((x-mx)*(y-my)).sum()/sxx,.5,3); b=1+sh*(b-1); a=(mx+sl*(my-mx))-b*mx; return a,b
def krig(xy, res, K, kernel=60, radius=300, prior=1.0):
    ta=cKDTree(xy); tk=cKDTree(xy[K])
    M=ta.sparse_distance_matrix(tk, radius, output_type='coo_matrix')
    i,j,dd=M.row,M.col,M.data
    keep=i!=K[j]; i,j,dd=i[keep],j[keep],dd[keep]
    w=np.exp(-dd/kernel)
    sw=np.bincount(i,w,len(xy)); swr=np.bincount(i,w*res[K[j]],len(xy))
    return swr/(sw+prior)
CH=[]
USEK=[True]
def recal(p, lo, hi, xy, known, K, mode, prior_n=float(os.environ.get('PN','10')), kernel=60, prior_w=1.0):
    if mode=='metre':
        a,b=gmap(p[K],known[K],prior_n); m=a+b*p
        res=np.full(len(p),np.nan); res[K]=known[K]-m[K]
        h=np.maximum(m+krig(xy,res,K,kernel,prior=prior_w),0)
        half=np.maximum(b*(hi-lo)/2,.5)
        q=conf(np.abs(known[K]-h[K])/half[K])
        return h, np.maximum(h-q*half,0), h+q*half
    # log space
    lp=np.log(p); ly=np.log(known[K])
    if os.environ.get('ROB'):
        r=ly-lp[K]; med=np.median(r); mad=1.4826*np.median(np.abs(r-med))+1e-9; c=float(os.environ['ROB'])
        ly=lp[K]+np.clip(r, med-c*mad, med+c*mad)
    if mode=='log-choose':
        n=len(K); lpk=lp[K]
        def fit(kind, idx):
            if kind=='none': return 0.,1.
            if kind=='shift':
                m=len(idx); return (ly[idx]-lpk[idx]).mean()*m/(m+float(os.environ.get('PLEV','3'))),1.
            return gmap(lpk[idx],ly[idx],prior_n,float(os.environ.get('PLEV',prior_n)))
        best=None
        for kind in ('none','shift','line'):
            loo=np.array([ (lambda ab: ab[0]+ab[1]*lpk[i])(fit(kind,np.r_[0:i,i+1:n])) for i in range(n)])
            a_,b_=fit(kind,np.arange(n)); res=np.full(len(p),np.nan); res[K]=ly-(a_+b_*lpk)
            kr=krig(xy,res,K,kernel,prior=prior_w)[K]
            for kk in ((False,True) if os.environ.get('KCH') else (True,)):
                e=np.abs(np.exp(loo+(kr if kk else 0))-known[K]).sum()
                if best is None or e<best[0]-1e-9: best=(e,kind,kk)
        CH.append(best[1]+('+k' if best[2] else '')); a,b=fit(best[1],np.arange(n)); USEK[0]=best[2]
    elif mode.startswith('log-shift'):
        n=len(K); a=np.median(ly-lp[K])*n/(n+prior_n*0.2); b=1.
    else:
        a,b=gmap(lp[K],ly,prior_n,float(os.environ.get('PLEV',prior_n)))
    m=a+b*lp
    res=np.full(len(p),np.nan); res[K]=ly-m[K]
    lh=m+(krig(xy,res,K,kernel,prior=prior_w) if USEK[0] else 0)
    s=np.maximum(b*np.log(hi/np.maximum(lo,0.1))/2, 0.05)
    g=float(os.environ.get('GAMMA','1')); s=s**g
    if os.environ.get('MIX'):
        h=np.exp(lh); half=np.maximum(np.exp(a)*p**(b-1)*b*(hi-lo)/2,.5) if os.environ['MIX']=='b' else np.maximum(h/p*(hi-lo)/2,.5)
        q=conf(np.abs(known[K]-h[K])/half[K]); return h, np.maximum(h-q*half,0), h+q*half
    if os.environ.get('ASYM'):
        r=(ly-lh[K])/s[K]; n=len(r)
        kl=int(np.floor((n+1)*0.05))-1; kh=int(np.ceil((n+1)*0.95))-1
        if kl>=0 and kh<n:
            rs=np.sort(r); return np.exp(lh), np.exp(lh+rs[kl]*s), np.exp(lh+rs[kh]*s)
    if os.environ.get('LSCALE'):
        # local scale: kernel mean of the known buildings' |residual| around each building
        r=np.abs(ly-lh[K]); g=np.mean(r); ker=float(os.environ.get('LKER','200')); pw=float(os.environ.get('LPW','2'))
        ta=cKDTree(xy); tk=cKDTree(xy[K])
        M=ta.sparse_distance_matrix(tk, 3*ker, output_type='coo_matrix')
        i,j,dd=M.row,M.col,M.data; keep=i!=K[j]; i,j,dd=i[keep],j[keep],dd[keep]
        w=np.exp(-dd/ker); sw=np.bincount(i,w,len(xy)); swr=np.bincount(i,w*r[j],len(xy))
        loc=(swr+pw*g)/(sw+pw)
        s=s**float(os.environ.get('LMIX','0'))*loc
    q=conf(np.abs(ly-lh[K])/s[K])
    return np.exp(lh), np.exp(lh-q*s), np.exp(lh+q*s)
def run(mode, how='share', amount=0.02, seeds=tuple(range(1,int(os.environ.get('NS','3'))+1)), **kw):
    out=[]
    for city,g in d.groupby('city'):
        g=g.reset_index(drop=True); n=len(g)
        p=g.height_predicted_m.values; lo=g.height_lo_m.values; hi=g.height_hi_m.values; y=g.height_m.values; xy=g[['x','y']].values
        r=[]
        for s in seeds:
            rng=np.random.default_rng(s); perm=rng.permutation(n)
            k=max(1,int(round(amount*n))) if how=='share' else int(amount)
            K=np.sort(perm[:k]); known=np.full(n,np.nan); known[K]=y[K]
            h,l,u=recal(p,lo,hi,xy,known,K,mode,**kw)
            T=np.setdiff1d(np.arange(n),K)
            r.append((np.abs(h[T]-y[T]).mean(), ((y[T]>=l[T])&(y[T]<=u[T])).mean(), np.median(u[T]-l[T])))
        r=np.array(r); out.append((city,)+tuple(r.mean(0))+(r[:,0].std(),))
    print(f"{mode} {how} {amount} {kw}", {k:CH.count(k) for k in set(CH)}); CH.clear()
    for city,mae,cov,w,sd in out:
        b=BCV[city]; print(f"  {city:22s} MAE {mae:6.2f}±{sd:.2f} ({mae/b:.2f}x) cov {cov:.3f} width {w:6.2f} ({w/b:.1f}x)")
if __name__=='__main__':
    for mode in sys.argv[1].split(','):
        run(mode, how=os.environ.get('HOW','share'), amount=float(os.environ.get('AMT','0.02')))
