using DpdkSharp.Native;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Paths;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>The compile-time variants the worker's paths are specialised on (generic struct
/// parameters: each instantiation is its own body without the others' branches).</summary>
public sealed unsafe partial class Worker
{
    private interface IPhyMode
    {
        static abstract bool Paired { get; }
        static abstract bool Tun { get; }
    }

    private struct Unpaired : IPhyMode
    {
        public static bool Paired => false;
        public static bool Tun => false;
    }

    private struct ToTap : IPhyMode
    {
        public static bool Paired => true;
        public static bool Tun => false;
    }

    private struct ToTun : IPhyMode
    {
        public static bool Paired => true;
        public static bool Tun => true;
    }

    /// <summary>Compile-time switch for tracing: the untraced instantiations contain no trace code.</summary>
    private interface ITrace
    {
        static abstract bool On { get; }
    }

    private struct NoTrace : ITrace
    {
        public static bool On => false;
    }

    private struct Traced : ITrace
    {
        public static bool On => true;
    }

    /// <summary>Compile-time switch of the one-pass IPv4 check: with the port's classifier
    /// pre-filter (frames a rule may match go to the slow path, where the rules see them) or without.</summary>
    private interface IAclMode
    {
        static abstract bool On { get; }
    }

    private struct NoAcl : IAclMode
    {
        public static bool On => false;
    }

    private struct WithAcl : IAclMode
    {
        public static bool On => true;
    }

    private interface IFamily
    {
        static abstract void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n);
        static abstract Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort);
        static abstract bool Apply(byte* frame, PathSlot* s);
    }

    private struct V4 : IFamily
    {
        public static void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib_lookup_bulk((void*)fib.V4[table], ctx.Dst4, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite4(groups, paths, nh, frame, out txPort);

        public static bool Apply(byte* frame, PathSlot* s) => Forwarding.Apply4(frame, s);
    }

    private struct V6 : IFamily
    {
        public static void Lookup(FibSnapshot fib, int table, WorkerContext ctx, ulong* nhs, uint n) =>
            Dpdk.rte_fib6_lookup_bulk((void*)fib.V6[table], ctx.Dst6, nhs, (int)n);

        public static Reason Rewrite(GroupEntry* groups, PathEntry* paths, ulong nh, byte* frame, out ushort txPort) =>
            Forwarding.Rewrite6(groups, paths, nh, frame, out txPort);

        public static bool Apply(byte* frame, PathSlot* s) => Forwarding.Apply6(frame, s);
    }
}
