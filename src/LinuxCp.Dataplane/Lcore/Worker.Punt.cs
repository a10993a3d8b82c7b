using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: punt or drop, by reason, with the punt policers; what point-to-point ports
/// teach (peer and neighbour MACs).</summary>
public sealed unsafe partial class Worker
{
    /// <summary>Punt (to the paired mirror, unchanged; TUN: without L2) or drop, counted by
    /// reason. The slow path: kept out of line so the fast loops stay small.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Decide<TMode, TTrace>(in PollEntry e, void* m, byte* frame, Reason r, int slot, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
        where TTrace : struct, ITrace
    {
        if (r < ReasonInfo.FirstDrop)
        {
            PuntPolicers policers;
            if (!TMode.Paired)
            {
                r = Reason.DropNoMirror;
            }
            else if ((policers = _dp.CurrentFeatures.Policers).Any
                     && !PuntBuckets.Admit(_ctx.Punt, policers, e.Port, PuntClasses.Of(frame, Mbuf.DataLen(m), r), (long)Eal.Rdtsc()))
            {
                r = Reason.DropPuntPoliced;
            }
            else if (TMode.Tun)
            {
                ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(frame + 12));
                if (type is FrameClassifier.EtherTypeIp4 or FrameClassifier.EtherTypeIp6)
                {
                    LearnPeer(e.Port, frame);
                    Mbuf.Adj(m, FrameClassifier.EtherHeader);
                }
                else
                {
                    r = Reason.DropTunNotIp;
                }
            }
        }
        _ctx.Counters.Reason(r)++;
        if (TTrace.On)
            TraceEnd(slot, r < ReasonInfo.FirstDrop ? TraceOutcome.Punted : TraceOutcome.Dropped, r, r < ReasonInfo.FirstDrop ? e.Peer : ushort.MaxValue);
        if (r < ReasonInfo.FirstDrop)
            _ctx.OutBuf[nPunt++] = m;
        else
            _ctx.DropBuf[nDrop++] = m;
    }

    /// <summary>Remembers the source MAC of an IP frame (whose headers the classifier checked)
    /// from a point-to-point port: as the link's peer (written only when it changes: the slot is
    /// shared by all workers) and as the adjacency of its source address (this worker's table).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LearnPeer(ushort port, byte* frame)
    {
        ulong mac = *(uint*)(frame + 6) | ((ulong)*(ushort*)(frame + 10) << 32);
        if ((mac & 1) != 0)
            return; // a group source MAC names no peer
        if (_dp.TunPeerMacs[port] != mac)
            Volatile.Write(ref _dp.TunPeerMacs[port], mac);
        bool v6 = frame[12] == 0x86;
        UInt128 src = v6 ? new UInt128(BinaryPrimitives.ReverseEndianness(*(ulong*)(frame + 22)), BinaryPrimitives.ReverseEndianness(*(ulong*)(frame + 30)))
            : BinaryPrimitives.ReverseEndianness(*(uint*)(frame + 26));
        _ctx.Learned.Learn(port, v6, src, mac);
    }
}
