using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;
using LinuxCp.TestSupport;

namespace LinuxCp.ControlPlane.Tests;

/// <summary>One namespace's model wired to a FIB writer on the reference backend: tests write
/// kernel messages (<see cref="NetlinkWriter"/>), they go through the real parser into the
/// handlers, and the FIB is inspected as a worker would see it.</summary>
public sealed class SyncHarness : IDisposable
{
    public static readonly TableId MainTable = new(0, 254);
    public ManagedFibBackend Backend { get; } = new();
    public TestPublisher Publisher { get; } = new();
    public FibWriter Fib { get; }
    public NamespaceSync Ns { get; }
    public List<string> Warnings { get; } = [];
    public List<MirrorInfo> Deleted { get; } = [];
    public List<(ushort Port, int Table)> PortTables { get; } = [];
    public List<(int IfIndex, bool Up, ushort Mtu)> LinkApplied { get; } = [];
    public int Malformed { get; private set; }

    public static readonly MacAddress Mac0 = MacAddress.Parse("02:00:00:00:00:10");
    public static readonly MacAddress Mac1 = MacAddress.Parse("02:00:00:00:00:11");

    /// <summary>Mirrors: lcp0 (ifindex 10, port 0), lcp1 (ifindex 11, port 1), tun2 (ifindex 12, port 2, TUN).</summary>
    public static readonly MirrorInfo Lcp0 = new(10, "lcp0", 0, false, Mac0);
    public static readonly MirrorInfo Lcp1 = new(11, "lcp1", 1, false, Mac1);
    public static readonly MirrorInfo Tun2 = new(12, "tun2", 2, true, MacAddress.Parse("02:00:00:00:00:12"));

    public SyncHarness(params MirrorInfo[] mirrors)
    {
        Fib = new FibWriter(Backend, Publisher, MainTable, new FibCapacity(4096, 64), new FibCapacity(4096, 64)) { Warn = Warnings.Add };
        Ns = new NamespaceSync(Fib, 0, null, new SyncOptions { ExtraTable4 = new(1024, 16), ExtraTable6 = new(1024, 16) })
        {
            Warn = Warnings.Add,
            MirrorDeleted = Deleted.Add,
            PortTableChanged = (p, t) => PortTables.Add((p, t)),
            ApplyMirrorLink = (m, up, mtu, mac) =>
            {
                LinkApplied.Add((m.IfIndex, up, mtu));
                return mac ?? m.PortMac;
            },
        };
        Ns.SetMirrors(mirrors.Length == 0 ? [Lcp0, Lcp1, Tun2] : mirrors);
        // The mirrors' links, up, as the first dump would report them.
        var w = new NetlinkWriter();
        foreach (MirrorInfo m in mirrors.Length == 0 ? [Lcp0, Lcp1, Tun2] : mirrors)
            w.Link(false, m.IfIndex, m.HostIf, mac: m.Tun ? 0 : m.PortMac.Bits);
        w.Link(false, 1, "lo", flags: Nl.IffUp, mtu: 65536);
        w.Link(false, 2, "eth9"); // an interface Linux owns (not a mirror)
        Feed(w);
    }

    /// <summary>Parses the writer's messages into the model, flushes bindings, commits.</summary>
    public CommitResult Feed(NetlinkWriter w)
    {
        var sink = Ns;
        Malformed += NetlinkParser.Parse(w.Span, ref sink);
        Ns.Flush();
        CommitResult r = Fib.Commit();
        Ns.AfterCommit();
        return r;
    }

    public CommitResult Feed(Action<NetlinkWriter> build)
    {
        var w = new NetlinkWriter();
        build(w);
        return Feed(w);
    }

    /// <summary>A resync: begin-sync, these messages as the dump, end-sync. Returns what was swept.</summary>
    public int Resync(Action<NetlinkWriter> dump)
    {
        var w = new NetlinkWriter();
        dump(w);
        Ns.BeginSync();
        var sink = Ns;
        Malformed += NetlinkParser.Parse(w.Span, ref sink);
        int removed = Ns.EndSync();
        Fib.Commit();
        Ns.AfterCommit();
        return removed;
    }

    public static UInt128 Ip(string s) => Prefix.Parse(s).Address;

    /// <summary>The FIB entry a worker would find for an address in the default table (or another).</summary>
    public FibEntry? Entry(string ip, int table = 0)
    {
        bool v6 = ip.Contains(':');
        int gid = Fib.Lookup(table, v6, Ip(ip));
        if (gid <= 0)
            return null;
        // The installed prefix that a longest match returned: the longest installed one covering it.
        return Fib.Dump(table, v6).Where(e => e.Prefix.Contains(Prefix.Host(v6, Ip(ip)))).MaxBy(e => e.Prefix.Length);
    }

    public GroupKind Kind(string ip, int table = 0) => Entry(ip, table)?.Kind ?? GroupKind.NoRoute;

    public void Dispose()
    {
        Ns.Dispose();
        Fib.Dispose();
    }
}
