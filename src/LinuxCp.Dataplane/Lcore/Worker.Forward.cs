using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Fib;
using DpdkSharp;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Dataplane.Paths;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Node: IPv4/IPv6 forward. One bulk FIB lookup per family, rewrite, TX buffering per
/// egress port; the single-path fast loop and the general one.</summary>
public sealed unsafe partial class Worker
{
    /// <summary>One bulk lookup for a family's candidates, then per packet: rewrite and buffer
    /// for its egress port, or punt/drop with the reason. Returns the number forwarded. Not
    /// inlined: a method of its own gets its own registers (inlined into the RX path, which is
    /// large, its per-packet loop kept a dozen values on the stack).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private uint ForwardBatch<TMode, TFamily, TTrace>(in PollEntry e, FibSnapshot fib, void** mbufs, int* slots, uint n, ref uint nPunt, ref uint nDrop)
        where TMode : struct, IPhyMode
        where TFamily : struct, IFamily
        where TTrace : struct, ITrace
    {
        ulong* nhs = _ctx.NextHops;
        TFamily.Lookup(fib, e.Table, _ctx, nhs, n);
        Mark(RuntimePath.Lookup, n);
        if (TTrace.On)
        {
            for (uint i = 0; i < n; i++)
            {
                if (slots[i] >= 0)
                {
                    TraceRecord* t = _ctx.Trace!.Records + slots[i];
                    t->LookedUp = 1;
                    t->NextHop = nhs[i];
                }
            }
        }
        GroupEntry* groups = fib.Groups;
        PathEntry* paths = fib.Paths;
        uint forwarded = 0;
        uint nLeft = n;
        void*** left = _ctx.Left;
        // The common case in one call-free leaf: packets through a single resolved path are
        // rewritten and buffered there. What it leaves (ECMP, punts, drops, too big) takes the
        // general loop below, after it; those packets belong to other flows (a flow's packets
        // share a next hop), so no flow is reordered.
        _ctx.Groups = groups;
        _ctx.Paths = paths;
        forwarded = ForwardSinglePaths<TFamily>(_ctx, mbufs, nhs, n, left, out nLeft);
        if (TTrace.On)
            TraceSinglePaths(groups, paths, mbufs, nhs, slots, n, left, nLeft);
        if (nLeft == 0)
        {
            Mark(RuntimePath.Rewrite, n);
            return forwarded;
        }
        // TX buffering as in the fast pass (SwitchTx/SaveTx): the current port's next free slot
        // and byte total in locals, the rest looked up when the egress port changes.
        WorkerContext ctx = _ctx;
        ctx.CurTxPort = -1;
        void** at = null;
        long curBytes = 0;
        for (uint k = 0; k < nLeft; k++)
        {
            uint i = (uint)(left[k] - mbufs);
            void* m = mbufs[i];
            byte* frame = Mbuf.Data(m);
            Reason r = TFamily.Rewrite(groups, paths, nhs[i], frame, out ushort txPort);
            if (r == Reason.Forward)
            {
                if (TTrace.On)
                    TraceForwarded(slots[i], txPort, frame, Mbuf.DataLen(m));
                if (txPort != ctx.CurTxPort)
                    SwitchTx(ctx, txPort, ref at, ref curBytes);
                *at++ = m;
                curBytes += Mbuf.PktLen(m);
                forwarded++;
            }
            else
            {
                Decide<TMode, TTrace>(in e, m, frame, r, TTrace.On ? slots[i] : -1, ref nPunt, ref nDrop);
            }
        }
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, curBytes);
        Mark(RuntimePath.Rewrite, n);
        return forwarded;
    }

    /// <summary>Forwards every candidate whose next hop is a group with one resolved path and
    /// that fits its MTU: rewrite, then append to the egress port's TX buffer (listing the port
    /// as pending when it was empty) and add its bytes. The others are left as received; the
    /// addresses of their slots in <paramref name="mbufs"/> go to <paramref name="left"/>.
    /// Returns the number forwarded. Consecutive packets usually share a next hop, so the path
    /// and the TX buffer are looked up once per run of them (a slot stays valid until the
    /// worker's next quiescent point). No overflow check: a burst holds at most BurstSize
    /// packets and every burst ends with FlushTx, so a port's buffer never holds more than one
    /// burst. A leaf without calls, so the values of the per-packet work stay in registers.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static uint ForwardSinglePaths<TFamily>(WorkerContext ctx, void** mbufs, ulong* nhs, uint n, void*** left, out uint nLeft)
        where TFamily : struct, IFamily
    {
        // Few live values in the per-packet part (x64 has 14 registers to give, and the
        // rewrite needs a few): one cursor walks the mbufs, the next hops are at a fixed
        // distance from it, the packets left over are noted by their slot's address, and what
        // is only needed when the next hop changes (tables, current port) stays in the context.
        ulong lastNh = ulong.MaxValue;
        PathSlot* s = null;
        long curBytes = 0;
        void** at = null; // next free slot of the current port's TX buffer
        void*** leftAt = left;
        nint toNh = (nint)((byte*)nhs - (byte*)mbufs);
        ctx.CurTxPort = -1;
        for (void** p = mbufs, end = mbufs + n; p < end; p++)
        {
            ulong nh = *(ulong*)((byte*)p + toNh);
            if (nh != lastNh)
            {
                lastNh = nh;
                s = Forwarding.SinglePath(ctx.Groups, ctx.Paths, nh);
                if (s != null && s->TxPort != ctx.CurTxPort)
                    SwitchTx(ctx, s->TxPort, ref at, ref curBytes);
            }
            void* m = *p;
            if (s != null && TFamily.Apply(Mbuf.Data(m), s))
            {
                *at++ = m;
                curBytes += Mbuf.PktLen(m);
            }
            else
            {
                *leftAt++ = p;
            }
        }
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, curBytes);
        nLeft = (uint)(leftAt - left);
        return n - nLeft;
    }

    /// <summary>The IPv4 fast loop on its own (unit tests: synthetic mbufs, no EAL).</summary>
    internal static uint ForwardSinglePaths4(WorkerContext ctx, GroupEntry* groups, PathEntry* paths, void** mbufs, ulong* nhs, uint n, out uint nLeft)
    {
        ctx.Groups = groups;
        ctx.Paths = paths;
        return ForwardSinglePaths<V4>(ctx, mbufs, nhs, n, ctx.Left, out nLeft);
    }

    /// <summary>Makes <paramref name="port"/> the current TX buffer of the fast loop: saves
    /// the previous one's fill and bytes, loads this one's, lists it as pending if empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SwitchTx(WorkerContext ctx, int port, ref void** at, ref long bytes)
    {
        if (ctx.CurTxPort >= 0)
            SaveTx(ctx, ctx.CurTxPort, at, bytes);
        ctx.CurTxPort = port;
        void** buf = ctx.TxBufs + port * WorkerOptions.BurstSize;
        at = buf + ctx.TxCounts[port];
        bytes = ctx.TxBytes[port];
        if (at == buf)
            ctx.TxPending[ctx.TxPendingCount++] = (ushort)port;
    }

    /// <summary>Stores a port's TX buffer fill (from its next free slot) and bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SaveTx(WorkerContext ctx, int port, void** at, long bytes)
    {
        ctx.TxCounts[port] = (int)(at - (ctx.TxBufs + port * WorkerOptions.BurstSize));
        ctx.TxBytes[port] = bytes;
    }
}
