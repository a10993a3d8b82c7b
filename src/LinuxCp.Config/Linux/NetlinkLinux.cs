using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using DpdkSharp;
using LinuxCp.Config.Model;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;
using Microsoft.Win32.SafeHandles;

namespace LinuxCp.Config.Linux;

/// <summary><see cref="ILinux"/> on rtnetlink: one request socket per namespace (opened on a
/// helper thread inside it), every request acknowledged and its error reported with the
/// kernel's extended-ack message; iptables and ethtool run through nsenter.</summary>
public sealed class NetlinkLinux : ILinux, IDisposable
{
    /// <summary>rtm_protocol / ifa_proto / NDA_PROTOCOL of what the config layer creates, so
    /// `ip route show proto 200` lists it and nothing else is mistaken for it.</summary>
    public const byte Protocol = 200;

    /// <summary>The config layer's requests carry sequence numbers 0xC0DE0000-0xC0DEFFFF; the
    /// kernel's notifications of the changes they make carry the same, so the drift watchers can
    /// tell lcpd's own changes from someone else's.</summary>
    public const uint OwnSeqMark = 0xC0DE0000;

    public static bool IsOwnSeq(uint seq) => (seq & 0xFFFF0000) == OwnSeqMark;

    private const ushort IflaIfalias = 20, IflaNetNsFd = 28, VethInfoPeer = 1, NdaProtocol = 12, IfaProto = 11;
    private const ushort NudPermanent = 0x80;

    private readonly Dictionary<string, Channel> _sockets = new(StringComparer.Ordinal);
    private readonly Func<string, (int Pid, string Reason)>? _microservices;

    /// <param name="microservices">Resolves a MICROSERVICE label to a PID (0 with a reason when
    /// it cannot).</param>
    public NetlinkLinux(Func<string, (int Pid, string Reason)>? microservices = null)
    {
        _microservices = microservices;
    }

    public string? Namespace(NamespaceRef? ns, bool create, out string reason)
    {
        reason = "";
        if (ns is null || ns.Type == NamespaceType.Undefined)
            return "";
        switch (ns.Type)
        {
            case NamespaceType.Nsid:
            {
                string path = $"/run/netns/{ns.Reference}";
                if (IsNamespaceFile(path))
                    return path;
                if (!create)
                {
                    reason = $"namespace {ns.Reference} does not exist";
                    return null;
                }
                if (Netns.InPrivateMountNamespace())
                {
                    // Under `ip netns exec`, a namespace lcpd mounts would be seen by lcpd alone.
                    reason = $"namespace {ns.Reference} does not exist, and lcpd runs in a private mount namespace (ip netns exec?) "
                        + $"where one it created would be invisible to the rest of the system: create it first (ip netns add {ns.Reference})";
                    return null;
                }
                try
                {
                    Netns.Ensure(ns.Reference);
                    return path;
                }
                catch (DpdkException e)
                {
                    reason = $"cannot create namespace {ns.Reference}: {e.Message}";
                    return null;
                }
            }
            case NamespaceType.Pid:
            {
                string path = $"/proc/{ns.Reference}/ns/net";
                if (IsNamespaceFile(path))
                    return path;
                reason = $"no process {ns.Reference}";
                return null;
            }
            case NamespaceType.Fd:
                if (IsNamespaceFile(ns.Reference))
                    return ns.Reference;
                reason = $"{ns.Reference} is not a network namespace file";
                return null;
            default:
            {
                if (_microservices is null)
                {
                    reason = $"microservice {ns.Reference}: no container runtime";
                    return null;
                }
                var (pid, why) = _microservices(ns.Reference);
                if (pid > 0 && IsNamespaceFile($"/proc/{pid}/ns/net"))
                    return $"/proc/{pid}/ns/net";
                reason = $"microservice {ns.Reference}: {why}";
                return null;
            }
        }
    }

    public bool CanCreateNamespaces => !Netns.InPrivateMountNamespace();

    private static bool IsNamespaceFile(string path)
    {
        try
        {
            return File.Exists(path) && Netns.Inode(path) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private Channel Chan(string ns)
    {
        if (!_sockets.TryGetValue(ns, out Channel? c))
        {
            try
            {
                c = new Channel(new NetlinkSocket(ns.Length == 0 ? null : ns, 0, 4 << 20));
            }
            catch (DpdkException e)
            {
                throw new LinuxException($"cannot open netlink in {Describe(ns)}: {e.Message}", e.Errno);
            }
            _sockets[ns] = c;
        }
        return c;
    }

    private static string Describe(string ns) => ns.Length == 0 ? "lcpd's namespace" : ns;

    public void Flush()
    {
        foreach (Channel c in _sockets.Values)
            c.Dispose();
        _sockets.Clear();
    }

    public void Dispose() => Flush();

    public IReadOnlyList<string> NamedNamespaces()
    {
        try
        {
            return Directory.Exists("/run/netns") ? [.. Directory.GetFiles("/run/netns").Select(Path.GetFileName).OfType<string>()] : [];
        }
        catch (IOException)
        {
            return [];
        }
    }

    public void DeleteNamedNamespace(string name)
    {
        if (_sockets.Remove($"/run/netns/{name}", out Channel? c))
            c.Dispose();
        var (code, output) = Run("", "ip", ["netns", "delete", name], null);
        if (code != 0)
            throw new LinuxException($"ip netns delete {name}: {output.Trim()}", 16);
    }

    // ---- links ----------------------------------------------------------------------------------

    public IReadOnlyList<LinkState> Links(string ns)
    {
        var sink = new Collect();
        Chan(ns).Dump(Nl.GetLink, Nl.AfUnspec, ref sink, 16);
        return sink.Links;
    }

    private static void IfInfo(NetlinkWriter w, int index, uint flags = 0, uint change = 0)
    {
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], change);
        w.Bytes(h);
    }

    private static SafeFileHandle OpenNs(string ns)
    {
        try
        {
            return File.OpenHandle(ns.Length == 0 ? "/proc/self/ns/net" : ns, FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LinuxException($"cannot open namespace {Describe(ns)}: {e.Message}", 2);
        }
    }

    public void CreateVeth(string ns, string name, string peerNs, string peerName)
    {
        using SafeFileHandle peer = OpenNs(peerNs);
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl);
        IfInfo(w, 0);
        w.Str(Nl.IflaIfname, name);
        w.BeginNest(Nl.IflaLinkinfo).Str(Nl.IflaInfoKind, "veth").BeginNest(Nl.IflaInfoData).BeginNest(VethInfoPeer);
        IfInfo(w, 0);
        w.Str(Nl.IflaIfname, peerName);
        w.U32(IflaNetNsFd, (uint)peer.DangerousGetHandle());
        w.EndNest().EndNest().EndNest();
        Chan(ns).Request(w, $"create veth {name} (peer {peerName}) in {Describe(ns)}");
        Alias(ns, name);
    }

    /// <summary>RTM_NEWLINK creating a link of a kind without a peer (dummy; vrf with its table).</summary>
    public static NetlinkWriter CreateLinkRequest(string name, string kind, uint vrfTable)
    {
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl);
        IfInfo(w, 0);
        w.Str(Nl.IflaIfname, name);
        w.BeginNest(Nl.IflaLinkinfo).Str(Nl.IflaInfoKind, kind);
        if (kind == "vrf")
            w.BeginNest(Nl.IflaInfoData).U32(Nl.IflaVrfTable, vrfTable).EndNest();
        w.EndNest();
        return w;
    }

    public void CreateLink(string ns, string name, string kind, uint vrfTable)
    {
        Chan(ns).Request(CreateLinkRequest(name, kind, vrfTable), $"create {kind} {name} in {Describe(ns)}");
        Alias(ns, name);
    }

    /// <summary>Marks a link as created by the config layer (ip link shows the alias).</summary>
    private void Alias(string ns, string name)
    {
        LinkState? l = Links(ns).FirstOrDefault(x => x.Name == name);
        if (l is null)
            return;
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck);
        IfInfo(w, l.Index);
        w.Str(IflaIfalias, "lcpd config");
        Chan(ns).Request(w, $"alias {name}");
    }

    public void DeleteLink(string ns, int index)
    {
        var w = new NetlinkWriter().Begin(Nl.DelLink, Nl.FRequest | Nl.FAck);
        IfInfo(w, index);
        Chan(ns).Request(w, $"delete link {index} in {Describe(ns)}");
    }

    public void SetLink(string ns, int index, LinkChange change)
    {
        LinkChange c = change;
        SafeFileHandle? target = c.TargetNamespace is null ? null : OpenNs(c.TargetNamespace);
        try
        {
            Chan(ns).Request(SetLinkRequest(index, c, target is null ? -1 : (int)target.DangerousGetHandle()), $"set link {index} in {Describe(ns)} ({Show(c)})");
        }
        finally
        {
            target?.Dispose();
        }
    }

    /// <summary>RTM_NEWLINK changing a link (name, MTU, MAC, admin state, master, namespace fd).</summary>
    public static NetlinkWriter SetLinkRequest(int index, LinkChange c, int nsFd)
    {
        var w = new NetlinkWriter().Begin(Nl.NewLink, Nl.FRequest | Nl.FAck);
        IfInfo(w, index, c.Up == true ? Nl.IffUp : 0, c.Up is null ? 0 : Nl.IffUp);
        if (c.Name is not null)
            w.Str(Nl.IflaIfname, c.Name);
        if (c.Mtu is uint mtu)
            w.U32(Nl.IflaMtu, mtu);
        if (c.Mac is ulong mac)
            w.Mac(Nl.IflaAddress, mac);
        if (c.Master is int m)
            w.U32(Nl.IflaMaster, (uint)m);
        if (nsFd >= 0)
            w.U32(IflaNetNsFd, (uint)nsFd);
        return w;
    }

    private static string Show(LinkChange c)
    {
        var parts = new List<string>();
        if (c.Name is not null)
            parts.Add($"name {c.Name}");
        if (c.Mtu is not null)
            parts.Add($"mtu {c.Mtu}");
        if (c.Mac is ulong m)
            parts.Add($"address {Mac.Format(m)}");
        if (c.Up is bool up)
            parts.Add(up ? "up" : "down");
        if (c.Master is int master)
            parts.Add(master == 0 ? "nomaster" : $"master {master}");
        if (c.TargetNamespace is not null)
            parts.Add($"netns {Describe(c.TargetNamespace)}");
        return string.Join(' ', parts);
    }

    public void SetOffloads(string ns, string name, bool rx, bool tx)
    {
        var (code, output) = Run(ns, "ethtool", ["-K", name, "rx", rx ? "on" : "off", "tx", tx ? "on" : "off"], null);
        if (code != 0)
            throw new LinuxException($"ethtool -K {name}: {output.Trim()}", 22);
    }

    // ---- addresses, neighbours, routes --------------------------------------------------------

    public IReadOnlyList<string> Addresses(string ns, int index)
    {
        var sink = new Collect();
        Chan(ns).Dump(Nl.GetAddr, Nl.AfUnspec, ref sink, 8);
        return [.. sink.Addrs.Where(a => a.IfIndex == index).Select(a => a.Prefix)];
    }

    public IReadOnlyList<(int IfIndex, string Prefix)> AllAddresses(string ns)
    {
        var sink = new Collect();
        Chan(ns).Dump(Nl.GetAddr, Nl.AfUnspec, ref sink, 8);
        return sink.Addrs;
    }

    private static void AddrMsg(NetlinkWriter w, string prefix, int index, out bool v6, out UInt128 addr)
    {
        Prefix p = Prefix.Parse(prefix);
        v6 = p.V6;
        addr = Ip.Parse(prefix.Split('/')[0], out _);
        Span<byte> h = stackalloc byte[8];
        h[0] = v6 ? Nl.AfInet6 : Nl.AfInet;
        h[1] = p.Length;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        w.Bytes(h);
        w.Ip(Nl.IfaLocal, v6, addr);
        w.Ip(Nl.IfaAddress, v6, addr);
    }

    public void AddAddress(string ns, int index, string prefix)
    {
        var w = new NetlinkWriter().Begin(Nl.NewAddr, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl);
        AddrMsg(w, prefix, index, out _, out _);
        w.U8(IfaProto, Protocol);
        Chan(ns).Request(w, $"add address {prefix} to link {index} in {Describe(ns)}");
    }

    public void DeleteAddress(string ns, int index, string prefix)
    {
        var w = new NetlinkWriter().Begin(Nl.DelAddr, Nl.FRequest | Nl.FAck);
        AddrMsg(w, prefix, index, out _, out _);
        Chan(ns).Request(w, $"delete address {prefix} from link {index} in {Describe(ns)}");
    }

    public IReadOnlyList<NeighState> Neighbors(string ns)
    {
        var sink = new Collect();
        Chan(ns).Dump(Nl.GetNeigh, Nl.AfUnspec, ref sink, 12);
        return sink.Neighs;
    }

    private static void NeighMsg(NetlinkWriter w, int index, string ip, ushort state)
    {
        UInt128 a = Ip.Parse(ip, out bool v6);
        Span<byte> h = stackalloc byte[12];
        h[0] = v6 ? Nl.AfInet6 : Nl.AfInet;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], state);
        w.Bytes(h);
        w.Ip(Nl.NdaDst, v6, a);
    }

    public void SetNeighbor(string ns, int index, string ip, ulong mac)
    {
        var w = new NetlinkWriter().Begin(Nl.NewNeigh, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FReplace);
        NeighMsg(w, index, ip, NudPermanent);
        w.Mac(Nl.NdaLladdr, mac);
        w.U8(NdaProtocol, Protocol);
        Chan(ns).Request(w, $"set neighbour {ip} lladdr {Mac.Format(mac)} on link {index} in {Describe(ns)}");
    }

    public void DeleteNeighbor(string ns, int index, string ip)
    {
        var w = new NetlinkWriter().Begin(Nl.DelNeigh, Nl.FRequest | Nl.FAck);
        NeighMsg(w, index, ip, 0);
        Chan(ns).Request(w, $"delete neighbour {ip} on link {index} in {Describe(ns)}");
    }

    public IReadOnlyList<RouteState> Routes(string ns)
    {
        var sink = new Collect();
        Chan(ns).Dump(Nl.GetRoute, Nl.AfInet, ref sink, 12);
        Chan(ns).Dump(Nl.GetRoute, Nl.AfInet6, ref sink, 12);
        return sink.Routes;
    }

    /// <summary>rtm_scope for a route: as declared, or what `ip route` picks (link without a gateway).</summary>
    public static byte Scope(LinuxRoute r) => r.Scope switch
    {
        RouteScope.Global => 0,
        RouteScope.Site => 200,
        RouteScope.Link => 253,
        RouteScope.Host => 254,
        _ => (byte)(r.GwAddr.Length == 0 ? 253 : 0),
    };

    private static void RouteMsg(NetlinkWriter w, LinuxRoute r, int oif)
    {
        Prefix p = Prefix.Parse(r.DstNetwork);
        Span<byte> h = stackalloc byte[12];
        h[0] = p.V6 ? Nl.AfInet6 : Nl.AfInet;
        h[1] = p.Length;
        h[4] = (byte)Nl.TableMain;
        h[5] = Protocol;
        h[6] = Scope(r);
        h[7] = Nl.RtnUnicast;
        w.Bytes(h);
        if (p.Length != 0)
            w.Ip(Nl.RtaDst, p.V6, p.Address);
        w.U32(Nl.RtaOif, (uint)oif);
        if (r.GwAddr.Length != 0)
            w.Ip(Nl.RtaGateway, p.V6, Ip.Parse(r.GwAddr, out _));
        if (r.Metric != 0)
            w.U32(Nl.RtaPriority, r.Metric);
    }

    public void AddRoute(string ns, LinuxRoute route, int oif)
    {
        var w = new NetlinkWriter().Begin(Nl.NewRoute, Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl);
        RouteMsg(w, route, oif);
        Chan(ns).Request(w, $"add route {route.DstNetwork}{(route.GwAddr.Length != 0 ? " via " + route.GwAddr : "")} dev {oif} in {Describe(ns)}");
    }

    public void DeleteRoute(string ns, LinuxRoute route, int oif)
    {
        var w = new NetlinkWriter().Begin(Nl.DelRoute, Nl.FRequest | Nl.FAck);
        RouteMsg(w, route, oif);
        Chan(ns).Request(w, $"delete route {route.DstNetwork} dev {oif} in {Describe(ns)}");
    }

    // ---- iptables -------------------------------------------------------------------------------

    public (int Code, string Output) Iptables(string ns, bool v6, IReadOnlyList<string> args, string? stdin = null) =>
        Run(ns, v6 ? "ip6tables" : "iptables", args, stdin);

    /// <summary>Runs a tool in the namespace (nsenter --net) with a time limit.</summary>
    public static (int Code, string Output) Run(string ns, string tool, IReadOnlyList<string> args, string? stdin)
    {
        var psi = new ProcessStartInfo(ns.Length == 0 ? tool : "nsenter")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        if (ns.Length != 0)
        {
            psi.ArgumentList.Add($"--net={ns}");
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(tool);
        }
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new LinuxException($"cannot run {tool}", 2);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LinuxException($"cannot run {tool}: {e.Message} (is it installed?)", 2);
        }
        using (p)
        {
            if (stdin is not null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }
            Task<string> err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(30_000))
            {
                p.Kill(true);
                throw new LinuxException($"{tool} did not finish in 30 s", 110);
            }
            return (p.ExitCode, output + err.GetAwaiter().GetResult());
        }
    }

    // ---- the socket -----------------------------------------------------------------------------

    // One receive buffer for every socket: the engine makes one request at a time, and a 1 MiB
    // array per socket (sockets are reopened per transaction) would be large-object garbage.
    private static readonly byte[] ReceiveBuffer = new byte[1 << 20];

    private sealed class Channel(NetlinkSocket s) : IDisposable
    {
        private readonly byte[] _buf = ReceiveBuffer;
        private uint _seq = (uint)Environment.TickCount;

        private uint NextSeq() => OwnSeqMark | (++_seq & 0xFFFF);

        public void Dispose() => s.Dispose();

        public void Request(NetlinkWriter w, string what)
        {
            uint seq = NextSeq();
            byte[] msg = w.End().ToArray();
            BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(8), seq);
            try
            {
                s.Send(msg);
            }
            catch (DpdkException e)
            {
                throw new LinuxException($"{what}: {e.Message}", e.Errno);
            }
            while (true)
            {
                int n = s.Receive(_buf, 5000);
                if (n == -11)
                    throw new LinuxException($"{what}: no answer from the kernel in 5 s", 110);
                if (n < 0)
                    throw new LinuxException($"{what}: receive failed (errno {-n})", -n);
                if (Ack(_buf.AsSpan(0, n), seq, out int errno, out string? ext))
                {
                    if (errno != 0)
                        throw new LinuxException($"{what}: {Eal.StrError(errno)}{(ext is null ? "" : $" ({ext})")}", errno);
                    return;
                }
            }
        }

        private static bool Ack(ReadOnlySpan<byte> b, uint seq, out int errno, out string? ext) =>
            NetlinkRequest.TryFindAck(b, seq, out errno, out ext);

        public void Dump(ushort type, byte family, ref Collect sink, int bodyLen)
        {
            uint seq = NextSeq();
            var w = new NetlinkWriter().Begin(type, Nl.FRequest | Nl.FDump, seq);
            Span<byte> body = stackalloc byte[bodyLen];
            body[0] = family;
            w.Bytes(body);
            try
            {
                s.Send(w.End().ToArray());
            }
            catch (DpdkException e)
            {
                throw new LinuxException($"dump: {e.Message}", e.Errno);
            }
            sink.Seq = seq;
            sink.Finished = false;
            sink.Errno = 0;
            while (!sink.Finished)
            {
                int n = s.Receive(_buf, 5000);
                if (n == -11)
                    throw new LinuxException("dump: no answer from the kernel in 5 s", 110);
                if (n < 0)
                    throw new LinuxException($"dump: receive failed (errno {-n})", -n);
                NetlinkParser.Parse(_buf.AsSpan(0, n), ref sink);
            }
            if (sink.Errno != 0)
                throw new LinuxException($"dump: {Eal.StrError(sink.Errno)}", sink.Errno);
        }
    }

    /// <summary>Collects a dump into records.</summary>
    internal sealed class Collect : INetlinkSink
    {
        public uint Seq;
        public bool Finished;
        public int Errno;
        public readonly List<LinkState> Links = [];
        public readonly List<(int IfIndex, string Prefix)> Addrs = [];
        public readonly List<NeighState> Neighs = [];
        public readonly List<RouteState> Routes = [];

        public void Link(in LinkMsg m)
        {
            if (!m.Deleted)
                Links.Add(new LinkState(m.IfIndex, Encoding.UTF8.GetString(m.Name), Encoding.UTF8.GetString(m.Kind), m.Mtu, m.Mac, m.AdminUp, m.Master));
        }

        public void Address(in AddrMsg m)
        {
            if (!m.Deleted)
                Addrs.Add((m.IfIndex, $"{Ip.Format(m.Address, m.V6)}/{m.PrefixLength}"));
        }

        public void Route(in RouteMsg m)
        {
            if (m.Deleted || m.Table != Nl.TableMain || m.Hops.Length != 1)
                return;
            RouteNextHop h = m.Hops[0];
            Routes.Add(new RouteState(m.Prefix.ToString(), h.IfIndex, h.HasGateway ? Ip.Format(h.Gateway, m.Prefix.V6) : "",
                m.Metric, m.Scope, m.Protocol, m.Table));
        }

        public void Neighbor(in NeighMsg m)
        {
            if (!m.Deleted)
                Neighs.Add(new NeighState(m.IfIndex, Ip.Format(m.Ip, m.V6), m.HasMac ? m.Mac : 0, m.State, 0));
        }

        public void Nexthop(in NexthopMsg m)
        {
        }

        public void Rule(in RuleMsg m)
        {
        }

        public void Control(ushort type, int errno, uint seq)
        {
            if (seq != Seq)
                return;
            Finished = true;
            Errno = errno;
        }
    }
}
