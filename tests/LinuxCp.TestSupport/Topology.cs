namespace LinuxCp.TestSupport;

/// <summary>A host namespace wired to the dataplane by a veth pair: <c>h{i}</c> in the host,
/// <c>dp{i}</c> in the dataplane namespace (the net_af_packet port).</summary>
public sealed record TestHost(int Index, string Ns, string Ifname, string DpIfname)
{
    public string Ip4 => $"10.201.{Index + 1}.2";
    public string RouterIp4 => $"10.201.{Index + 1}.1";
    public string Ip6 => $"2001:db8:{Index + 1}::2";
    public string RouterIp6 => $"2001:db8:{Index + 1}::1";
    public string PortName => $"net_af_packet{Index}";
    public string MirrorName => $"lcp{Index}";
}

/// <summary>Namespaces and veths for one test: a dataplane namespace (lcpd and its ports), a
/// router namespace for the mirrors, and N host namespaces. Unique names; everything is
/// deleted on dispose (deleting a namespace deletes the veth ends inside it).</summary>
public sealed class Topology : IDisposable
{
    private readonly List<string> _namespaces = [];

    public string Id { get; } = Repo.UniqueId();
    public string Dp { get; }
    public string Rt { get; }
    public IReadOnlyList<TestHost> Hosts { get; }

    /// <param name="portIpv6">leave IPv6 on the dataplane ends (as on a fresh veth or NIC) instead
    /// of turning it off like a NIC bound to DPDK.</param>
    public Topology(int hosts = 2, bool portIpv6 = false)
    {
        try
        {
            Dp = AddNs("dp");
            // lcpd runs under `ip netns exec` (a private mount namespace), so a namespace it
            // created would be invisible to us: create the mirrors' namespace beforehand.
            Rt = AddNs("rt");
            var list = new List<TestHost>();
            for (int i = 0; i < hosts; i++)
            {
                string ns = AddNs($"h{i}");
                var h = new TestHost(i, ns, $"h{i}", $"dp{i}");
                Cmd.Ok("ip", "link", "add", h.DpIfname, "netns", Dp, "type", "veth", "peer", "name", h.Ifname, "netns", ns);
                // Like a NIC bound to DPDK: the dataplane namespace's kernel must not answer on it.
                if (!portIpv6)
                    Cmd.InNsOk(Dp, "sysctl", "-qw", $"net.ipv6.conf.{h.DpIfname}.disable_ipv6=1");
                Cmd.InNsOk(Dp, "ip", "link", "set", h.DpIfname, "up");
                Cmd.InNsOk(ns, "ip", "link", "set", "lo", "up");
                Cmd.InNsOk(ns, "ip", "addr", "add", $"{h.Ip4}/24", "dev", h.Ifname);
                Cmd.InNsOk(ns, "ip", "-6", "addr", "add", $"{h.Ip6}/64", "dev", h.Ifname, "nodad");
                // A veth leaves TCP/UDP checksums to be filled in later (offload); a packet
                // socket (net_af_packet) takes the frame as it is, so the dataplane would forward
                // it with the checksum unset and the receiver would drop it. Hosts compute their own.
                Cmd.InNsOk(ns, "ethtool", "-K", h.Ifname, "tx", "off");
                Cmd.InNsOk(ns, "ip", "link", "set", h.Ifname, "up");
                Cmd.InNsOk(ns, "ip", "route", "add", "default", "via", h.RouterIp4);
                Cmd.InNsOk(ns, "ip", "-6", "route", "add", "default", "via", h.RouterIp6);
                list.Add(h);
            }
            Hosts = list;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Another namespace of the test (deleted with the others), named after <paramref name="role"/>.</summary>
    public string AddNamespace(string role) => AddNs(role);

    private string AddNs(string role)
    {
        string ns = $"lcpt-{role}-{Id}";
        Cmd.Ok("ip", "netns", "add", ns);
        _namespaces.Add(ns);
        return ns;
    }

    /// <summary>EAL --vdev arguments for the hosts' dataplane ends (with <paramref name="queues"/>
    /// queue pairs each: the kernel spreads flows over them with PACKET_FANOUT hashing).</summary>
    public IEnumerable<string> VdevArgs(int queues = 1)
    {
        foreach (TestHost h in Hosts)
        {
            yield return "--vdev";
            yield return queues == 1 ? $"{h.PortName},iface={h.DpIfname}" : $"{h.PortName},iface={h.DpIfname},qpairs={queues}";
        }
    }

    /// <summary>Gives the router namespace the addresses of host i's subnet on its mirror.</summary>
    public void ConfigureRouterInterface(TestHost h)
    {
        Cmd.InNsOk(Rt, "ip", "addr", "add", $"{h.RouterIp4}/24", "dev", h.MirrorName);
        Cmd.InNsOk(Rt, "ip", "-6", "addr", "add", $"{h.RouterIp6}/64", "dev", h.MirrorName, "nodad");
        Cmd.InNsOk(Rt, "ip", "link", "set", h.MirrorName, "up");
    }

    public void EnableRouting()
    {
        Cmd.InNsOk(Rt, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
        Cmd.InNsOk(Rt, "ip", "link", "set", "lo", "up");
    }

    public bool NamespaceExists(string ns) => File.Exists($"/run/netns/{ns}");

    public void Dispose()
    {
        foreach (string ns in Enumerable.Reverse(_namespaces))
            if (NamespaceExists(ns))
                Cmd.Run("ip", "netns", "del", ns);
        _namespaces.Clear();
    }
}
