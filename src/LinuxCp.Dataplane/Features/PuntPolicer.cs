using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Dataplane.Features;

/// <summary>What a punted packet is, for the punt policers: the control protocols a router must
/// keep (neighbour discovery, routing protocols, L2 control) have their own budgets, apart from
/// what a flood can produce (TTL expiry, glean, no route, ...).</summary>
public enum PuntClass : byte
{
    ArpNd,
    Routing,
    L2Control,
    Local,
    TtlExpired,
    Glean,
    NoRoute,
    Multicast,
    Other,
    Count,
}

public static class PuntClasses
{
    public static string Name(PuntClass c) => c switch
    {
        PuntClass.ArpNd => "arp-nd",
        PuntClass.Routing => "routing",
        PuntClass.L2Control => "l2-control",
        PuntClass.Local => "local",
        PuntClass.TtlExpired => "ttl-expired",
        PuntClass.Glean => "glean",
        PuntClass.NoRoute => "no-route",
        PuntClass.Multicast => "multicast",
        _ => "other",
    };

    public static string Description(PuntClass c) => c switch
    {
        PuntClass.ArpNd => "ARP, IPv6 neighbour and router discovery (ICMPv6 133-137)",
        PuntClass.Routing => "BGP, OSPF, BFD, RIP, VRRP, PIM, LDP, IS-IS",
        PuntClass.L2Control => "LACP, LLDP, STP and other IEEE 802.1 link-local frames",
        PuntClass.Local => "other packets to the router's addresses (ping, SSH, ...)",
        PuntClass.TtlExpired => "TTL / hop limit expiry (Linux answers time-exceeded)",
        PuntClass.Glean => "next hop not resolved yet",
        PuntClass.NoRoute => "no route, unreachable routes, routes via non-mirrors",
        PuntClass.Multicast => "other multicast and broadcast",
        _ => "everything else punted (options, too big, VLAN, no FIB, ...)",
    };

    public static PuntClass? Parse(string name)
    {
        for (PuntClass c = 0; c < PuntClass.Count; c++)
            if (Name(c) == name)
                return c;
        return null;
    }

    /// <summary>Default budget of each class per port: packets per second and burst.</summary>
    public static (long Rate, long Burst) Default(PuntClass c) => c switch
    {
        PuntClass.Routing => (20_000, 4000),
        PuntClass.Local => (5000, 1000),
        PuntClass.L2Control or PuntClass.TtlExpired => (1000, 200),
        _ => (2000, 400),
    };

    /// <summary>The class of a frame punted for <paramref name="r"/> (an Ethernet frame with
    /// <paramref name="seg"/> bytes readable). Every read is bounds-checked: a short frame falls
    /// back on its reason's class.</summary>
    public static unsafe PuntClass Of(byte* f, uint seg, Reason r)
    {
        if (r == Reason.PuntArp)
            return PuntClass.ArpNd;
        if (seg >= 14)
        {
            // IEEE 802.1 link-local (01:80:c2:00:00:0x: STP, LACP, LLDP, ...); IS-IS (01:80:c2:00:00:14/15, 09:00:2b:00:00:04/05).
            if (f[0] == 0x01 && f[1] == 0x80 && f[2] == 0xC2 && f[3] == 0 && f[4] == 0)
                return f[5] is 0x14 or 0x15 ? PuntClass.Routing : PuntClass.L2Control;
            if (f[0] == 0x09 && f[1] == 0x00 && f[2] == 0x2B && f[3] == 0 && f[4] == 0 && f[5] is 0x04 or 0x05)
                return PuntClass.Routing;
            ushort type = BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 12));
            if (type == 0x88CC || type == 0x8809)
                return PuntClass.L2Control;
            int proto = -1;
            byte* l4 = null;
            uint l4Len = 0;
            if (type == 0x0800 && seg >= 34)
            {
                uint ihl = (uint)(f[14] & 0xF) << 2;
                proto = f[23];
                bool firstFragment = (BinaryPrimitives.ReverseEndianness(*(ushort*)(f + 20)) & 0x1FFF) == 0;
                if (ihl >= 20 && seg >= 14 + ihl && firstFragment)
                {
                    l4 = f + 14 + ihl;
                    l4Len = seg - 14 - ihl;
                }
            }
            else if (type == 0x86DD && seg >= 54)
            {
                proto = f[20];
                l4 = f + 54;
                l4Len = seg - 54;
            }
            if (proto is 89 or 112 or 103)
                return PuntClass.Routing; // OSPF, VRRP, PIM
            if (proto == 58 && l4Len >= 1 && l4[0] is >= 133 and <= 137)
                return PuntClass.ArpNd;
            if (proto is 6 or 17 && l4Len >= 4)
            {
                ushort sport = BinaryPrimitives.ReverseEndianness(*(ushort*)l4);
                ushort dport = BinaryPrimitives.ReverseEndianness(*(ushort*)(l4 + 2));
                if (proto == 6 && (sport is 179 or 646 || dport is 179 or 646))
                    return PuntClass.Routing; // BGP, LDP
                if (proto == 17 && (dport is 3784 or 3785 or 4784 or 520 or 521 or 646 || sport is 520 or 521))
                    return PuntClass.Routing; // BFD, RIP, RIPng, LDP discovery
            }
        }
        return r switch
        {
            Reason.PuntLocal or Reason.PuntIp6LinkLocal => PuntClass.Local,
            Reason.PuntTtl => PuntClass.TtlExpired,
            Reason.PuntGlean => PuntClass.Glean,
            Reason.PuntNoRoute or Reason.PuntUnreachable or Reason.PuntLinuxRoute => PuntClass.NoRoute,
            Reason.PuntMulticast => PuntClass.Multicast,
            _ => PuntClass.Other,
        };
    }
}

/// <summary>The punt policers' settings as the workers read them: per port and class, the cost
/// of one packet and the bucket's capacity, in TSC cycles of one worker's bucket (each worker
/// polices its own share, rate / workers, with no shared state). Cost 0: not policed. A class has
/// one budget for every port unless a port has its own (an override). Immutable; replaced whole.</summary>
public sealed class PuntPolicers
{
    public static readonly PuntPolicers Off = new(new (long, long)[(int)PuntClass.Count], 1, 1);

    /// <summary>Per class: packets per second and burst, per port (0 rate: not policed).</summary>
    public readonly (long Rate, long Burst)[] Settings;

    /// <summary>The ports with budgets of their own, per class (0 rate: not policed there).</summary>
    public readonly IReadOnlyDictionary<(int Port, PuntClass Class), (long Rate, long Burst)> Overrides;

    /// <summary>Indexed by port * PuntClass.Count + class, like the buckets.</summary>
    internal readonly long[] Cost, Cap;
    public readonly bool Any;
    private readonly long _tscHz;
    private readonly int _workers;

    public PuntPolicers((long Rate, long Burst)[] settings, long tscHz, int workers,
        IReadOnlyDictionary<(int Port, PuntClass Class), (long Rate, long Burst)>? overrides = null)
    {
        if (settings.Length != (int)PuntClass.Count)
            throw new ArgumentException("one setting per punt class");
        Settings = [.. settings];
        Overrides = overrides is null ? new Dictionary<(int, PuntClass), (long, long)>() : new Dictionary<(int, PuntClass), (long, long)>(overrides);
        _tscHz = tscHz;
        _workers = workers;
        Cost = new long[Interfaces.Max * (int)PuntClass.Count];
        Cap = new long[Cost.Length];
        for (int port = 0; port < Interfaces.Max; port++)
        {
            for (int c = 0; c < settings.Length; c++)
            {
                var (rate, burst) = Budget(port, (PuntClass)c);
                if (rate <= 0)
                    continue;
                // One worker polices rate / workers with burst / workers (at least one packet).
                int i = port * (int)PuntClass.Count + c;
                Cost[i] = Math.Max(1, tscHz * workers / rate);
                Cap[i] = Cost[i] * Math.Max(1, burst / workers);
                Any = true;
            }
        }
    }

    /// <summary>The budget on <paramref name="port"/>: its own, or the class's.</summary>
    public (long Rate, long Burst) Budget(int port, PuntClass c) =>
        Overrides.TryGetValue((port, c), out var own) ? own : Settings[(int)c];

    public static PuntPolicers Defaults(long tscHz, int workers) =>
        new([.. Enumerable.Range(0, (int)PuntClass.Count).Select(c => PuntClasses.Default((PuntClass)c))], tscHz, workers);

    /// <summary>The class's budget for every port without one of its own.</summary>
    public PuntPolicers With(PuntClass c, long rate, long burst, long tscHz, int workers)
    {
        var s = (ValueTuple<long, long>[])Settings.Clone();
        s[(int)c] = (rate, burst);
        return new PuntPolicers(s, tscHz, workers, Overrides);
    }

    /// <summary>A budget of its own for one port (null: back to the class's).</summary>
    public PuntPolicers WithPort(int port, PuntClass c, (long Rate, long Burst)? budget)
    {
        if ((uint)port >= Interfaces.Max)
            throw new ArgumentOutOfRangeException(nameof(port));
        var o = new Dictionary<(int, PuntClass), (long, long)>(Overrides);
        if (budget is { } b)
            o[(port, c)] = b;
        else
            o.Remove((port, c));
        return new PuntPolicers(Settings, _tscHz, _workers, o);
    }

    /// <summary>Forgets the budgets of a port that went away.</summary>
    public PuntPolicers WithoutPort(int port) =>
        Overrides.Keys.Any(k => k.Port == port)
            ? new PuntPolicers(Settings, _tscHz, _workers, Overrides.Where(kv => kv.Key.Port != port).ToDictionary(kv => kv.Key, kv => kv.Value))
            : this;
}

/// <summary>One worker's token buckets (one per port and class) and counters. A bucket holds
/// credit in TSC cycles: it fills with time up to the class's capacity and a packet takes the
/// class's cost, so a bucket is two longs and an admit is a few arithmetic operations.</summary>
public static unsafe class PuntBuckets
{
    /// <summary>Longs per port and class: credit, last refill, passed, policed.</summary>
    public const int Stride = 4;

    public static int Longs => Interfaces.Max * (int)PuntClass.Count * Stride;

    /// <summary>Takes a packet's cost from the (port, class) bucket if it has it; counts either way.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Admit(long* buckets, PuntPolicers p, int port, PuntClass c, long now)
    {
        int i = port * (int)PuntClass.Count + (int)c;
        long* b = buckets + i * Stride;
        long cost = p.Cost[i];
        if (cost == 0)
        {
            b[2]++;
            return true;
        }
        long cap = p.Cap[i];
        long credit = b[0] + (now - b[1]);
        if (credit > cap || b[1] == 0)
            credit = cap; // full (also: first use, or the settings shrank)
        b[1] = now;
        if (credit >= cost)
        {
            b[0] = credit - cost;
            b[2]++;
            return true;
        }
        b[0] = credit;
        b[3]++;
        return false;
    }

    public static long Passed(long* buckets, int port, PuntClass c) =>
        Volatile.Read(ref buckets[((port * (int)PuntClass.Count) + (int)c) * Stride + 2]);

    public static long Policed(long* buckets, int port, PuntClass c) =>
        Volatile.Read(ref buckets[((port * (int)PuntClass.Count) + (int)c) * Stride + 3]);
}
