using System.Buffers.Binary;
using DpdkSharp;
using DpdkSharp.Native;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Tests;

/// <summary>EAL inside this test process, once: the node tests run a real worker on real DPDK
/// ports (the pcap driver reading and writing files) without a daemon or a kernel mirror.</summary>
public sealed class EalFixture : IDisposable
{
    public Mempool Pool { get; }

    public EalFixture()
    {
        int cpus = Environment.ProcessorCount;
        string set = cpus > 1 ? $"(0-{cpus - 1})" : "0";
        Eal.Init("lcp-node-tests", ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
            "--file-prefix", $"lcpnode{Environment.ProcessId}", "--lcores", $"0@{set},1@{set}", "--log-level", "lib.eal:warning"]);
        Pool = Mempool.CreatePktmbuf("lcpnode", 4095, 0, 2176, -1);
    }

    public void Dispose() => Eal.Cleanup();
}

[CollectionDefinition("eal")]
public sealed class EalCollection : ICollectionFixture<EalFixture>;

/// <summary>One worker (lcore 1) polling pcap ports: each port replays the frames it was given
/// once and writes what the worker sends on it to a file, read back after the run.</summary>
public sealed class NodeRig : IDisposable
{
    private static int s_seq;
    private readonly EalFixture _eal;
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpnode-").FullName;
    private readonly Dictionary<ushort, string> _out = [];
    private readonly HashSet<ushort> _removed = [];

    public DataplaneEngine Engine { get; } = new(new WorkerOptions { IdleSleepMicros = 20, IdleLoopsBeforeSleep = 16 }, [1u], 0);

    public NodeRig(EalFixture eal) => _eal = eal;

    /// <summary>A port that receives <paramref name="frames"/> (in order, once).</summary>
    public unsafe ushort Port(params byte[][] frames)
    {
        int n = Interlocked.Increment(ref s_seq);
        string name = $"net_pcap_lcpnode{Environment.ProcessId}_{n}";
        string rx = Path.Combine(_dir, $"{n}-in.pcap"), tx = Path.Combine(_dir, $"{n}-out.pcap");
        WritePcap(rx, frames);
        using (var args = new NativeUtf8($"{name},rx_pcap={rx},tx_pcap={tx}"))
            DpdkException.Check(LcpShim.lcp_dev_probe_in_netns(null, args.Pointer), $"probe {name}");
        if (!EthPort.TryGetByName(name, out ushort port))
            throw new InvalidOperationException($"{name}: probed but not found");
        EthPort.Setup(port, 1, 256, 256, _eal.Pool);
        _out[port] = tx;
        return port;
    }

    /// <summary>Runs the worker over <paramref name="entries"/> until <paramref name="done"/>
    /// holds (or 10 s), then stops it.</summary>
    public void Run(PollEntry[] entries, Func<DataplaneEngine, bool> done)
    {
        Engine.Publish(entries);
        Engine.LaunchWorkers();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!done(Engine) && DateTime.UtcNow < deadline)
            Thread.Sleep(5);
        Thread.Sleep(50); // anything still in flight lands (the counters move before TX returns)
        Engine.Stop();
        Engine.Join();
        Assert.Null(Engine.Workers[0].FailureMessage);
    }

    /// <summary>What the worker sent on a port (closes the port: call after <see cref="Run"/>).</summary>
    public List<byte[]> Sent(ushort port)
    {
        if (_removed.Add(port))
            EthPort.Remove(port);
        return ReadPcap(_out[port]);
    }

    public void Dispose()
    {
        foreach (ushort port in _out.Keys)
            if (_removed.Add(port))
                EthPort.Remove(port);
        Engine.Dispose();
        Directory.Delete(_dir, true);
    }

    private static void WritePcap(string path, byte[][] frames)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(0xA1B2C3D4u);
        w.Write((ushort)2);
        w.Write((ushort)4);
        w.Write(0);
        w.Write(0u);
        w.Write(65535u);
        w.Write(1u); // Ethernet (a TUN port's records are bare IP; the driver does not look)
        foreach (byte[] f in frames)
        {
            w.Write(0u);
            w.Write(0u);
            w.Write((uint)f.Length);
            w.Write((uint)f.Length);
            w.Write(f);
        }
    }

    private static List<byte[]> ReadPcap(string path)
    {
        var frames = new List<byte[]>();
        if (!File.Exists(path))
            return frames;
        byte[] b = File.ReadAllBytes(path);
        for (int at = 24; at + 16 <= b.Length;)
        {
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 8));
            frames.Add(b.AsSpan(at + 16, len).ToArray());
            at += 16 + len;
        }
        return frames;
    }
}
