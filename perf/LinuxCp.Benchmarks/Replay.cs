using System.Buffers.Binary;
using System.Diagnostics;
using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Sync;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.Benchmarks;

/// <summary>
/// lcpd's route-processing rate without the kernel in the way: route messages recorded from a
/// real kernel (<c>ip route save</c>: the raw RTM_NEWROUTE stream of a dump) are replayed
/// through the same code the daemon runs — the netlink parser, the namespace model and its
/// handlers, the FIB writer on DPDK's rte_fib/rte_fib6 (both copies, as in production) — in
/// chunks the size of a netlink receive, committing every 20000 messages like the listener.
/// Each rep starts from an empty FIB; reports routes/s, garbage collections and bytes allocated.
///   replay --oif N [--rte|--managed] [--reps 5] file...
/// </summary>
public static class Replay
{
    private const uint SaveMagic = 0x45311224; // what `ip route save` writes first
    private const int Chunk = 32 * 1024;       // about what one recvmsg of a dump returns
    private const int Batch = 20000;           // the listener's default --netlink-batch

    private sealed class NoWorkers : IFibPublisher
    {
        public void Publish(FibSnapshot snapshot) { }
        public bool WaitGracePeriod(TimeSpan timeout) => true;
        public ulong PeerMac(ushort port) => 0;

        public void LearnedNeighbors(List<LinuxCp.Dataplane.Tables.LearnedNeighbor> into) { }
    }

    public static int Run(string[] args)
    {
        int oif = 0, reps = 5;
        bool rte = true;
        var files = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--oif": oif = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--reps": reps = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--managed": rte = false; break;
                case "--rte": rte = true; break;
                default: files.Add(args[i]); break;
            }
        }
        if (oif <= 0 || files.Count == 0)
        {
            Console.Error.WriteLine("usage: replay --oif <ifindex of the routes' interface> [--rte|--managed] [--reps n] <ip route save file>...");
            return 2;
        }
        List<byte[]> chunks = Load(files, out long messages, out long v6);
        if (rte)
        {
            int rc = Eal.Init("replay", ["--no-huge", "-m", "4096", "--no-pci", "--file-prefix", $"replay{Environment.ProcessId}", "--lcores", "0@0", "--log-level", "lib.eal:warning"]);
            if (rc < 0)
            {
                Console.Error.WriteLine($"replay: EAL init failed: {Eal.StrError(-rc)}");
                return 1;
            }
        }
        Console.WriteLine($"replay: {messages} messages in {chunks.Count} chunks from {string.Join(", ", files)}, backend {(rte ? "rte_fib" : "managed")}");
        // Sized as perf/scripts/dump-sync.sh sizes lcpd: room for every route, ~3 tbl8 groups per IPv6 one.
        var cap4 = new FibCapacity((uint)Math.Min(1L << 26, messages - v6 + 65536), 16384);
        var cap6 = new FibCapacity((uint)Math.Min(1L << 24, v6 + 65536), (uint)Math.Min(RteFibBackend.Tbl8Limit6, 3 * v6 + 65536));
        var rates = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            IFibBackend backend = rte ? new RteFibBackend(0) : new ManagedFibBackend();
            using var fib = new FibWriter(backend, new NoWorkers(), new TableId(0, 254), cap4, cap6);
            var ns = new NamespaceSync(fib, 0, null) { ApplyMirrorLink = (m, up, mtu, mac) => mac ?? m.PortMac };
            var mirror = new MirrorInfo(oif, "fill0", 0, false, MacAddress.Parse("02:00:00:00:00:01"));
            ns.SetMirrors([mirror]);
            var w = new NetlinkWriter();
            w.Link(false, oif, "fill0", mac: mirror.PortMac.Bits);
            var sink = ns;
            NetlinkParser.Parse(w.Span, ref sink);
            ns.Flush();
            fib.Commit();
            ns.AfterCommit();

            int gc0 = GC.CollectionCount(0);
            long alloc = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            ns.BeginSync();
            NetlinkParser.Parse(w.Span, ref sink); // the dump reports the link again (it stays)
            long sinceCommit = 0, malformed = 0;
            foreach (byte[] c in chunks)
            {
                long before = ns.Messages;
                malformed += NetlinkParser.Parse(c, ref sink);
                sinceCommit += ns.Messages - before;
                if (sinceCommit >= Batch)
                {
                    ns.Flush();
                    fib.Commit();
                    ns.AfterCommit();
                    sinceCommit = 0;
                }
            }
            ns.EndSync(); // what the dump lacked is swept: nothing here
            ns.Flush();
            fib.Commit();
            ns.AfterCommit();
            sw.Stop();
            double rate = messages / sw.Elapsed.TotalSeconds;
            rates.Add(rate);
            Console.WriteLine($"rep {r + 1}: {messages} routes in {sw.Elapsed.TotalSeconds:F3} s = {rate:F0} routes/s; FIB {fib.Count4} IPv4 + {fib.Count6} IPv6; " +
                $"refused {fib.RefusedPrefixes}; malformed {malformed}; GCs {GC.CollectionCount(0) - gc0}; allocated {(GC.GetAllocatedBytesForCurrentThread() - alloc) / 1024} KiB");
            ns.Dispose();
        }
        rates.Sort();
        Console.WriteLine($"median {rates[rates.Count / 2]:F0} routes/s (min {rates[0]:F0}, max {rates[^1]:F0}) over {reps} reps");
        return 0;
    }

    /// <summary>The files' messages, cut at message boundaries into receive-sized chunks.</summary>
    private static List<byte[]> Load(List<string> files, out long messages, out long v6)
    {
        var chunks = new List<byte[]>();
        messages = v6 = 0;
        foreach (string f in files)
        {
            byte[] all = File.ReadAllBytes(f);
            int off = all.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(all) == SaveMagic ? 4 : 0;
            int start = off;
            while (off + 16 <= all.Length)
            {
                int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(all.AsSpan(off));
                if (len < 16 || off + len > all.Length)
                    throw new InvalidDataException($"{f}: bad netlink message at byte {off}");
                int next = off + ((len + 3) & ~3);
                if (next - start > Chunk)
                {
                    chunks.Add(all[start..off]);
                    start = off;
                }
                if (len > 16 && all[off + 16] == 10) // rtm_family AF_INET6
                    v6++;
                off = next;
                messages++;
            }
            if (off > start)
                chunks.Add(all[start..Math.Min(off, all.Length)]);
        }
        return chunks;
    }
}
