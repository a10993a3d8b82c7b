using DpdkSharp.Native;

namespace DpdkSharp;

/// <summary>Ethdev operations by port id (cold path: setup, control, stats).</summary>
public static unsafe class EthPort
{
    public const int MaxPorts = Layouts.RTE_MAX_ETHPORTS;

    public static bool IsValid(ushort port) => Dpdk.rte_eth_dev_is_valid_port(port) != 0;

    /// <summary>All valid port ids.</summary>
    public static List<ushort> All()
    {
        var ports = new List<ushort>();
        for (ulong p = Dpdk.rte_eth_find_next(0); p < MaxPorts; p = Dpdk.rte_eth_find_next((ushort)(p + 1)))
            ports.Add((ushort)p);
        return ports;
    }

    public static bool TryGetByName(string name, out ushort port)
    {
        using var n = new NativeUtf8(name);
        ushort id;
        int rc = Dpdk.rte_eth_dev_get_port_by_name(n.Pointer, &id);
        port = id;
        return rc == 0;
    }

    public static string Name(ushort port)
    {
        byte* buf = stackalloc byte[64];
        int rc = Dpdk.rte_eth_dev_get_name_by_port(port, buf);
        return rc == 0 ? NativeUtf8.Read(buf) ?? "" : $"port{port}";
    }

    public static string Driver(ushort port)
    {
        byte* buf = stackalloc byte[64];
        return LcpShim.lcp_port_driver(port, buf, 64) == 0 ? NativeUtf8.Read(buf) ?? "" : "";
    }

    /// <summary>The arguments the port's device was probed with ("iface=eth1,qpairs=1"), or "".</summary>
    public static string Devargs(ushort port)
    {
        byte* buf = stackalloc byte[512];
        return LcpShim.lcp_port_devargs(port, buf, 512) == 0 ? NativeUtf8.Read(buf) ?? "" : "";
    }

    /// <summary>The value of one key of the port's device arguments (<c>iface</c>), or null.</summary>
    public static string? Devarg(ushort port, string key)
    {
        foreach (string kv in Devargs(port).Split(','))
        {
            int eq = kv.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && kv.AsSpan(0, eq).Trim().SequenceEqual(key))
                return kv[(eq + 1)..].Trim();
        }
        return null;
    }

    /// <summary>Receives and frees whatever waits on the port's RX queues; only while nothing
    /// else polls them. Returns the frames discarded.</summary>
    public static int DrainRx(ushort port, ushort queues)
    {
        void** pkts = stackalloc void*[32];
        int total = 0;
        for (ushort q = 0; q < queues; q++)
        {
            for (int i = 0; i < 4096; i++)
            {
                ushort n = Burst.Rx(port, q, pkts, 32);
                if (n == 0)
                    break;
                Burst.Free(pkts, n);
                total += n;
            }
        }
        return total;
    }

    public static MacAddress Mac(ushort port)
    {
        rte_ether_addr a;
        DpdkException.Check(Dpdk.rte_eth_macaddr_get(port, &a), $"port {port} MAC");
        return MacAddress.FromBytes(new ReadOnlySpan<byte>(&a, 6));
    }

    public static ushort Mtu(ushort port)
    {
        ushort mtu;
        return Dpdk.rte_eth_dev_get_mtu(port, &mtu) == 0 ? mtu : (ushort)0;
    }

    public static int SetMtu(ushort port, ushort mtu) => Dpdk.rte_eth_dev_set_mtu(port, mtu);

    public static void Setup(ushort port, ushort queues, ushort rxDesc, ushort txDesc, Mempool pool)
        => DpdkException.Check(LcpShim.lcp_port_setup(port, queues, rxDesc, txDesc, pool.Handle), $"port {port} ({Name(port)}) setup");

    /// <summary>Setup from a thread inside <paramref name="netns"/>: required for kernel-backed
    /// PMDs (net_tap/net_tun) whose queue setup opens the device by name.</summary>
    public static void SetupInNetns(string? netns, ushort port, ushort queues, ushort rxDesc, ushort txDesc, Mempool pool)
    {
        using var ns = new NativeUtf8(netns);
        DpdkException.Check(LcpShim.lcp_port_setup_in_netns(ns.Pointer, port, queues, rxDesc, txDesc, pool.Handle),
            $"port {port} ({Name(port)}) setup");
    }

    public static (bool Up, uint SpeedMbps) Link(ushort port)
    {
        int up;
        uint speed;
        return LcpShim.lcp_port_link(port, &up, &speed) == 0 ? (up != 0, speed) : (false, 0);
    }

    public static rte_eth_stats Stats(ushort port)
    {
        rte_eth_stats s;
        if (Dpdk.rte_eth_stats_get(port, &s) != 0)
            s = default;
        return s;
    }

    public static int SetMac(ushort port, MacAddress mac)
    {
        rte_ether_addr a;
        mac.CopyTo(new Span<byte>(&a, 6));
        return Dpdk.rte_eth_dev_default_mac_addr_set(port, &a);
    }

    public static int Promiscuous(ushort port) => Dpdk.rte_eth_promiscuous_enable(port);

    public static int AllMulticast(ushort port) => Dpdk.rte_eth_allmulticast_enable(port);

    /// <summary>Stops, closes and hot-unplugs the port's device.</summary>
    public static int Remove(ushort port) => LcpShim.lcp_port_remove(port);

    public static int SocketId(ushort port) => Dpdk.rte_eth_dev_socket_id(port);
}
