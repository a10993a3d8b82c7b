using System.Globalization;
using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;

namespace LinuxCp.Management.Config;

/// <summary>A pair requested on the launch line: <c>--pair &lt;port&gt;=&lt;host-if&gt;[,tun][,netns=&lt;ns&gt;][,persist][,table=&lt;n&gt;]</c>.</summary>
/// <summary>A kernel interface to attach as a port: <c>--attach &lt;ifname&gt;[,netns=&lt;ns&gt;][,xdp]</c>.</summary>
public sealed record AttachSpec(string Ifname, string? Netns, bool Xdp);

public sealed record PairSpec(string Port, string HostIf, bool Tun, string? Netns, bool Persist, uint? Table = null, ushort? Tpid = null,
    MirrorKind? Kind = null);

/// <summary>The launch line is malformed; the message says how.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }

    public UsageException() { }

    public UsageException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>lcpd's launch line, EAL style: <c>lcpd [EAL options] -- [lcpd options]</c>.</summary>
public sealed record LaunchOptions
{
    public IReadOnlyList<string> EalArgs { get; init; } = [];
    public IReadOnlyList<PairSpec> Pairs { get; init; } = [];
    public IReadOnlyList<AttachSpec> Attach { get; init; } = [];
    public IReadOnlyList<BondSpec> Bonds { get; init; } = [];
    public string? Netns { get; init; }
    public string ApiSocket { get; init; } = Contracts.Protocol.DefaultSocket;
    /// <summary>--api-socket-group: members of this group may use the API socket (mode 0660).</summary>
    public string? ApiSocketGroup { get; init; }
    public bool PuntOther { get; init; } = true;
    public uint IdleSleepMicros { get; init; }
    public ushort RxDescriptors { get; init; } = 1024;
    public ushort TxDescriptors { get; init; } = 1024;
    public uint Mbufs { get; init; } = 32767;
    public string LogLevel { get; init; } = "info";
    public bool Fib { get; init; } = true;
    public IReadOnlyDictionary<string, DpdkSharp.MacAddress> PortMacs { get; init; } = new Dictionary<string, DpdkSharp.MacAddress>();
    /// <summary>FIB sizes; null: the default, scaled down to fit the memory EAL has.</summary>
    public uint? FibRoutes { get; init; }
    public uint? Fib6Routes { get; init; }
    public uint? FibTbl8 { get; init; }
    public uint? Fib6Tbl8 { get; init; }
    public const uint DefaultFibRoutes = 1 << 20, DefaultFib6Routes = 1 << 18, DefaultFibTbl8 = 16384, DefaultFib6Tbl8 = 65536;
    /// <summary>--debug-commands: serve the debug command family (fault injection for tests).</summary>
    public bool DebugCommands { get; init; }
    public uint NetlinkReceiveBuffer { get; init; } = 64 << 20;
    public uint NetlinkBatch { get; init; } = 20_000;
    public bool Help { get; init; }
    /// <summary>--check: print the host checklist for this launch line and exit (0 when nothing fails).</summary>
    public bool Check { get; init; }
    /// <summary>--check --json: the checklist as lcpctl doctor --json prints it.</summary>
    public bool CheckJson { get; init; }
    /// <summary>--keep-port-ipv6: leave IPv6 on the kernel interfaces under af_packet/af_xdp ports.</summary>
    public bool KeepPortIpv6 { get; init; }
    /// <summary>--no-config: no declarative configuration layer.</summary>
    public bool ConfigLayer { get; init; } = true;
    /// <summary>--config: a document loaded at start as the "init" source.</summary>
    public string? ConfigFile { get; init; }
    /// <summary>Where the config layer keeps its state (null: --no-config-state, kept in memory only).</summary>
    public string? ConfigStateDir { get; init; } = "/var/lib/lcpd";
    /// <summary>--no-repair: drift of managed items is reported, not repaired.</summary>
    public bool ConfigRepair { get; init; } = true;
    /// <summary>--flow-table: flows each worker's flow table holds (allocated when first needed).</summary>
    public int FlowTable { get; init; } = 262_144;
    /// <summary>--classify-file: classifier rules installed before the workers start.</summary>
    public string? ClassifyFile { get; init; }
    /// <summary>--etcd: endpoints of the etcd cluster holding this router's configuration.</summary>
    public string? Etcd { get; init; }
    /// <summary>--agent-label: this router's name in etcd (/lcp/&lt;label&gt;/...); default the host name.</summary>
    public string AgentLabel { get; init; } = Environment.MachineName;
    /// <summary>TCP address for the gRPC Configurator service (--grpc), besides its unix socket.</summary>
    public System.Net.IPEndPoint? Grpc { get; init; }
    /// <summary>TCP address for the REST API (--http), in addition to the API socket.</summary>
    public System.Net.IPEndPoint? Http { get; init; }
    /// <summary>Who may use the TCP listener (--api-token-file, --http-public-reads, TLS).</summary>
    public HttpSecurity HttpSecurity { get; init; } = new();
    /// <summary>Serve REST over the API socket (HTTP connections are recognised and forwarded).</summary>
    public bool Rest { get; init; } = true;
    /// <summary>--unknown-vlan punt: on a port with sub-interfaces, tags none has go to the port's mirror.</summary>
    public bool PuntUnknownVlan { get; init; }
    /// <summary>--link-hold-down: how long a port's link change must last before its mirror's carrier follows (ms).</summary>
    public uint LinkHoldDownMs { get; init; }
    /// <summary>--link-poll: how often ports' links are read (ms).</summary>
    public uint LinkPollMs { get; init; } = 100;
    /// <summary>--no-link-sync: leave the mirrors' carrier alone.</summary>
    public bool LinkSync { get; init; } = true;
    /// <summary>--queue-map: which queue of every port each worker lcore polls.</summary>
    public IReadOnlyDictionary<uint, ushort> QueueMap { get; init; } = new Dictionary<uint, ushort>();

    public const string HelpText = """
        Usage: lcpd [EAL options] -- [lcpd options]

        LinuxCp dataplane: owns the DPDK ports, mirrors each paired port into Linux as a TAP (or
        TUN) interface, punts what Linux must see and x-connects what Linux sends.

        EAL options are DPDK's (e.g. -l/--lcores, -a <pci>, --vdev <dev>, --no-huge, -m, --file-prefix).
        The main lcore runs the control plane; every other lcore runs a worker. With a single lcore
        the worker runs on the main lcore.

        lcpd options:
          --pair <port>[.<vid>[.<inner>]]=<host-if>[,tun|,veth|,veth-xdp][,netns=<ns>][,persist][,table=<n>][,tpid=88a8|8100]
                                 mirror <port> (DPDK device name or port id) as <host-if>; repeatable.
                                 veth, veth-xdp: the mirror is one end of a veth pair whose other
                                 end the dataplane serves with af_packet rings or XDP sockets
                                 (batched; see docs/lcpd.md) instead of a TAP.
                                 <port>.<vid>: an 802.1Q sub-interface of the port (made with the
                                 pair); <port>.<outer>.<inner>: QinQ, outer tag 802.1ad (tpid=88a8,
                                 the default) or 802.1Q (tpid=8100), inner 802.1Q.
                                 tun: point-to-point TUN mirror instead of a TAP; netns: namespace for
                                 the mirror (default --netns); persist: keep the interface after exit
                                 and adopt it, with Linux's addresses and routes, at the next start;
                                 table: forward in kernel table <n> of the namespace (otherwise the
                                 table an 'ip rule iif <host-if>' or a VRF device gives, or main)
          --bond <name>=<port>,<port>[,...][,mode=lacp|active-backup|balance-xor][,hash=l2|l23|l34]
                                 bond ports with DPDK's bonding PMD (default 802.3ad/LACP, hash
                                 l23); the bond is a port named <name> (pair it like any port), its
                                 members are not ports of their own; repeatable
          --attach <ifname>[,netns=<ns>][,xdp]
                                 make an existing kernel interface (a VM's tap, a veth, a NIC
                                 without a DPDK driver) a port, named net_af_packet_<ifname>
                                 (af_xdp with xdp); repeatable. Its kernel side is quietened (IPv6
                                 off, no ARP replies, no forwarding) until lcpd lets it go
          --netns <ns>           default namespace for mirrors (created if missing)
          --port-mac <port>=<mac>  set a port's MAC before it starts (its mirror gets it too); repeatable
          --flow-table <n>       flows per worker's flow table (default 262144, 76 bytes each),
                                 allocated at the first flow enable or reflect rule
          --classify-file <f>    classifier rules to install at start, one per line in the words of
                                 `classify add rule` ('#' comments); any bad line stops the start
          --api-socket <path>    API socket for lcpctl (default /run/lcpd.sock, mode 0600)
          --api-socket-group <g> let group <g> (name or id) use the API socket too (mode 0660)
          --http <addr:port>     also serve the REST API and /metrics on this TCP address (needs a
                                 credential source below; TLS when the address is not loopback)
          --api-token-file <f>   bearer tokens for --http, one '<token> <ro|rw> <name>' per line
                                 (mode 0600; re-read when it changes); rw tokens may change state
          --http-public-reads    GET requests on --http need no credential (e.g. for Prometheus)
          --http-tls-cert <pem>, --http-tls-key <pem>
                                 serve --http over TLS with this certificate and key
          --http-client-ca <pem> accept TLS client certificates issued by this CA as read-write
                                 credentials
                                 (e.g. 127.0.0.1:8080); the API socket serves them in any case
          --no-rest              do not serve REST on the API socket (JSON-lines protocol only)
          --grpc <ip>:<port>     serve the gRPC Configurator service on TCP too (same credentials and
                                 TLS rules as --http); it is always on <api-socket>.grpc (mode 0600)
          --queue-map <lcore>=<queue>[,...]
                                 which RX/TX queue of every port each worker lcore uses
                                 (default: the i-th worker lcore uses queue i)
          --no-punt-other        drop non-IP/ARP ethertypes instead of punting them
          --unknown-vlan drop|punt  on a port with sub-interfaces, what becomes of frames with tags
                                 none of them has: dropped as vlan-unknown (default) or punted to
                                 the port's own mirror as received
          --link-hold-down <ms>  a port's link change reaches its mirror's carrier once it has lasted
                                 this long (default 0: at the next poll); damps flapping links
          --link-poll <ms>       how often ports' links are read (10-10000, default 100)
          --no-link-sync         leave the mirrors' carrier alone (lcp-sync off)
          --keep-port-ipv6       leave IPv6 on the kernel interface under an af_packet/af_xdp/pcap
                                 port whose mirror has its MAC (by default lcpd turns it off: the two
                                 would share a link-local address and the mirror's DAD would fail)
          --check                check the host for this launch line (hugepages, memory, ports'
                                 kernel interfaces, CPUs, ...), print OK/WARN/FAIL with the fix for
                                 each, and exit: 0 when nothing fails, 1 otherwise (--json: as JSON)
          --idle-sleep-us <n>    sleep n us after 1024 empty loop iterations (default 0: busy poll)
          --rx-desc <n>          RX descriptors per queue (default 1024)
          --tx-desc <n>          TX descriptors per queue (default 1024)
          --mbufs <n>            mbufs in the packet pool (default 32767)
          --log-level <level>    trace|debug|info|warning|error|critical (default info)
          --no-fib               no fast path: punt every IP packet to Linux (mirror only)
          --fib-routes <n>       IPv4 capacity of the default table in routes (default 1048576, scaled
                                 down with a log line when EAL's memory is too small for it)
          --fib6-routes <n>      IPv6 capacity of the default table in routes (default 262144)
          --netlink-rcvbuf <bytes>  netlink socket receive buffer (default 64 MiB)
          --netlink-batch <n>    most netlink events applied per FIB commit (default 20000)
          --fib-tbl8 <n>         IPv4 tbl8 groups (one per /24 holding longer prefixes; 256-32767, default 16384)
          --fib6-tbl8 <n>        IPv6 tbl8 groups (one per 8 bits below /24 of a prefix; 256-1048576,
                                 default 65536, or 4x --fib-tbl8 when only that is given)
          --config <file>        declarative configuration (YAML or JSON, vpp-agent's Config shape
                                 plus lcp_config) applied at start as the source 'init'
          --config-state-dir <d> where the desired configuration and its revisions are kept across
                                 restarts (default /var/lib/lcpd)
          --no-config-state      keep the configuration in memory only
          --no-repair            report managed Linux items changed behind lcpd's back, do not repair them
          --no-config            no declarative configuration layer (config commands are refused)
          --etcd <url>[,<url>]   watch this router's configuration in etcd: items under
                                 /lcp/<label>/config/..., states written under /lcp/<label>/status/...
          --agent-label <label>  this router's name in etcd (default: the host name)
          --debug-commands       serve the debug commands (fault injection, e.g. debug fib-drop)
          -h, --help             this text

        Signals: SIGTERM/SIGINT stop the workers and ports, remove the mirrors and exit 0.
        Exit codes: 0 clean stop, 1 start-up or runtime failure, 2 bad launch line.
        """;


    public static LaunchOptions Parse(IReadOnlyList<string> args)
    {
        // --check is accepted anywhere (EAL has no option of that name), so that it can be put in
        // front of an existing launch line.
        if (args.Contains("--check"))
        {
            bool json = args.Contains("--json");
            return Parse([.. args.Where(a => a is not ("--check" or "--json"))]) with { Check = true, CheckJson = json };
        }
        int sep = -1;
        for (int i = 0; i < args.Count; i++)
            if (args[i] == "--")
            {
                sep = i;
                break;
            }
        if (sep < 0)
        {
            if (args.Count == 1 && args[0] is "-h" or "--help")
                return new LaunchOptions { Help = true };
            return new LaunchOptions { EalArgs = [.. args] };
        }

        var ealArgs = args.Take(sep).ToList();
        var pairs = new List<PairSpec>();
        var attach = new List<AttachSpec>();
        var bonds = new List<BondSpec>();
        var o = new LaunchOptions { EalArgs = ealArgs };
        for (int i = sep + 1; i < args.Count; i++)
        {
            string a = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                    throw new UsageException($"option {a} needs a value");
                return args[++i];
            }
            switch (a)
            {
                case "-h":
                case "--help":
                    return o with { Help = true };
                case "--pair":
                    pairs.Add(ParsePair(Value()));
                    break;
                case "--attach":
                    attach.Add(ParseAttach(Value()));
                    break;
                case "--bond":
                    bonds.Add(ParseBond(Value()));
                    break;
                case "--netns":
                    string ns = Value();
                    if (!DpdkSharp.Netns.IsValidName(ns))
                        throw new UsageException($"bad netns name '{ns}'");
                    o = o with { Netns = ns };
                    break;
                case "--api-socket":
                    string path = Value();
                    if (path.Length == 0 || path.Length > 107)
                        throw new UsageException($"--api-socket path must be 1 to 107 characters");
                    o = o with { ApiSocket = path };
                    break;
                case "--http":
                    string http = Value();
                    if (!System.Net.IPEndPoint.TryParse(http, out System.Net.IPEndPoint? ep) || ep.Port == 0)
                        throw new UsageException($"--http '{http}': expected <ip>:<port>, e.g. 127.0.0.1:8080");
                    o = o with { Http = ep };
                    break;
                case "--grpc":
                    string grpc = Value();
                    if (!System.Net.IPEndPoint.TryParse(grpc, out System.Net.IPEndPoint? gep) || gep.Port == 0)
                        throw new UsageException($"--grpc '{grpc}': expected <ip>:<port>, e.g. 127.0.0.1:9111");
                    o = o with { Grpc = gep };
                    break;
                case "--api-socket-group":
                    string g = Value();
                    if (g.Length == 0 || g.Contains(':') || g.Contains('\n'))
                        throw new UsageException($"--api-socket-group '{g}': not a group name");
                    o = o with { ApiSocketGroup = g };
                    break;
                case "--flow-table":
                    string ft = Value();
                    if (!int.TryParse(ft, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int flows) || flows < 16 || flows > 1 << 26)
                        throw new UsageException($"--flow-table '{ft}': a number of flows from 16 to 67108864");
                    o = o with { FlowTable = flows };
                    break;
                case "--classify-file":
                    o = o with { ClassifyFile = Value() };
                    break;
                case "--api-token-file":
                    o = o with { HttpSecurity = o.HttpSecurity with { TokenFile = Value() } };
                    break;
                case "--http-public-reads":
                    o = o with { HttpSecurity = o.HttpSecurity with { PublicReads = true } };
                    break;
                case "--http-tls-cert":
                    o = o with { HttpSecurity = o.HttpSecurity with { TlsCert = Value() } };
                    break;
                case "--http-tls-key":
                    o = o with { HttpSecurity = o.HttpSecurity with { TlsKey = Value() } };
                    break;
                case "--http-client-ca":
                    o = o with { HttpSecurity = o.HttpSecurity with { ClientCa = Value() } };
                    break;
                case "--queue-map":
                    string qm = Value();
                    var map = new Dictionary<uint, ushort>();
                    foreach (string item in qm.Split(','))
                    {
                        string[] kv = item.Split('=');
                        if (kv.Length != 2 || !uint.TryParse(kv[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint lc)
                            || !ushort.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out ushort qq) || !map.TryAdd(lc, qq))
                            throw new UsageException($"--queue-map '{qm}': expected <lcore>=<queue>[,<lcore>=<queue>...], each lcore once");
                    }
                    o = o with { QueueMap = map };
                    break;
                case "--no-rest":
                    o = o with { Rest = false };
                    break;
                case "--no-punt-other":
                    o = o with { PuntOther = false };
                    break;
                case "--unknown-vlan":
                    string uv = Value();
                    if (uv is not ("drop" or "punt"))
                        throw new UsageException($"--unknown-vlan '{uv}': drop or punt");
                    o = o with { PuntUnknownVlan = uv == "punt" };
                    break;
                case "--link-hold-down":
                    o = o with { LinkHoldDownMs = Number(a, Value(), 0, 600_000) };
                    break;
                case "--link-poll":
                    o = o with { LinkPollMs = Number(a, Value(), 10, 10_000) };
                    break;
                case "--no-link-sync":
                    o = o with { LinkSync = false };
                    break;
                case "--keep-port-ipv6":
                    o = o with { KeepPortIpv6 = true };
                    break;
                case "--idle-sleep-us":
                    o = o with { IdleSleepMicros = Number(a, Value(), 0, 1_000_000) };
                    break;
                case "--rx-desc":
                    o = o with { RxDescriptors = (ushort)Number(a, Value(), 64, 16384) };
                    break;
                case "--tx-desc":
                    o = o with { TxDescriptors = (ushort)Number(a, Value(), 64, 16384) };
                    break;
                case "--mbufs":
                    o = o with { Mbufs = Number(a, Value(), 1024, 16_777_216) };
                    break;
                case "--port-mac":
                    string pm = Value();
                    int eqm = pm.IndexOf('=', StringComparison.Ordinal);
                    if (eqm <= 0 || !DpdkSharp.MacAddress.TryParse(pm[(eqm + 1)..], out DpdkSharp.MacAddress mac) || (mac.Bits & 1) != 0)
                        throw new UsageException($"--port-mac '{pm}': expected <port>=<unicast mac>");
                    o = o with { PortMacs = new Dictionary<string, DpdkSharp.MacAddress>(o.PortMacs) { [pm[..eqm]] = mac } };
                    break;
                case "--netlink-rcvbuf":
                    o = o with { NetlinkReceiveBuffer = Number(a, Value(), 4096, 1u << 30) };
                    break;
                case "--netlink-batch":
                    o = o with { NetlinkBatch = Number(a, Value(), 1, 1_000_000) };
                    break;
                case "--no-fib":
                    o = o with { Fib = false };
                    break;
                case "--no-config":
                    o = o with { ConfigLayer = false };
                    break;
                case "--config":
                    o = o with { ConfigFile = Value() };
                    break;
                case "--config-state-dir":
                    o = o with { ConfigStateDir = Value() };
                    break;
                case "--no-config-state":
                    o = o with { ConfigStateDir = null };
                    break;
                case "--no-repair":
                    o = o with { ConfigRepair = false };
                    break;
                case "--etcd":
                    string etcdUrls = Value();
                    if (etcdUrls.Split(',').Any(e => !Uri.TryCreate(e, UriKind.Absolute, out Uri? u) || u.Scheme is not ("http" or "https")))
                        throw new UsageException($"--etcd '{etcdUrls}': expected http(s)://host:port[,...]");
                    o = o with { Etcd = etcdUrls };
                    break;
                case "--agent-label":
                    string label = Value();
                    if (label.Length == 0 || label.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
                        throw new UsageException($"--agent-label '{label}': letters, digits, '-', '_' and '.' only");
                    o = o with { AgentLabel = label };
                    break;
                case "--debug-commands":
                    o = o with { DebugCommands = true };
                    break;
                case "--fib-routes":
                    o = o with { FibRoutes = Number(a, Value(), 1024, 1u << 26) };
                    break;
                case "--fib6-routes":
                    o = o with { Fib6Routes = Number(a, Value(), 1024, 1u << 24) };
                    break;
                case "--fib-tbl8":
                    o = o with { FibTbl8 = Number(a, Value(), 256, 32767) }; // 15-bit next hops bound the tbl8 count
                    break;
                case "--fib6-tbl8":
                    o = o with { Fib6Tbl8 = Number(a, Value(), 256, 1 << 20) };
                    break;
                case "--log-level":
                    string lvl = Value();
                    if (!Observe.LogSwitch.TryParse(lvl, out Microsoft.Extensions.Logging.LogLevel level))
                        throw new UsageException($"bad log level '{lvl}' (one of {string.Join(", ", Observe.LogSwitch.Names)})");
                    o = o with { LogLevel = Observe.LogSwitch.Name(level) };
                    break;
                default:
                    throw new UsageException($"unknown option '{a}'");
            }
        }

        o.HttpSecurity.Check(o.Http, o.Grpc);
        var seenPorts = new HashSet<string>();
        var seenIfs = new HashSet<(string, string?)>();
        foreach (PairSpec p in pairs)
        {
            if (!seenPorts.Add(p.Port))
                throw new UsageException($"port {p.Port} is paired twice");
            if (!seenIfs.Add((p.HostIf, p.Netns ?? o.Netns)))
                throw new UsageException($"duplicate host-if {p.HostIf}");
        }
        return o with { Pairs = pairs, Attach = attach, Bonds = bonds };
    }

    private static uint Number(string opt, string v, uint min, uint max)
    {
        if (!uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) || n < min || n > max)
            throw new UsageException($"{opt} takes a number from {min} to {max}, not '{v}'");
        return n;
    }

    public static BondSpec ParseBond(string s)
    {
        const string Usage = "expected <name>=<port>,<port>[,...][,mode=lacp|active-backup|balance-xor][,hash=l2|l23|l34]";
        string[] parts = s.Split(',');
        int eq = parts[0].IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == parts[0].Length - 1)
            throw new UsageException($"--bond '{s}': {Usage}");
        string name = parts[0][..eq];
        var members = new List<string> { parts[0][(eq + 1)..] };
        BondMode mode = BondMode.Lacp;
        BondHash hash = BondHash.L23;
        foreach (string p in parts.Skip(1))
        {
            if (p.StartsWith("mode=", StringComparison.Ordinal))
                mode = p[5..] switch
                {
                    "lacp" or "802.3ad" => BondMode.Lacp,
                    "active-backup" => BondMode.ActiveBackup,
                    "balance-xor" => BondMode.BalanceXor,
                    _ => throw new UsageException($"--bond '{s}': mode '{p[5..]}' is lacp, active-backup or balance-xor"),
                };
            else if (p.StartsWith("hash=", StringComparison.Ordinal))
                hash = p[5..] switch
                {
                    "l2" => BondHash.L2,
                    "l23" => BondHash.L23,
                    "l34" => BondHash.L34,
                    _ => throw new UsageException($"--bond '{s}': hash '{p[5..]}' is l2, l23 or l34"),
                };
            else if (p.Length != 0 && !p.Contains('='))
                members.Add(p);
            else
                throw new UsageException($"--bond '{s}': {Usage} (bad '{p}')");
        }
        if (members.Count < 2)
            throw new UsageException($"--bond '{s}': a bond needs two members or more");
        return new BondSpec(name, members, mode, hash);
    }

    public static AttachSpec ParseAttach(string s)
    {
        string[] parts = s.Split(',');
        if (PairManager.ValidateHostIf(parts[0]) is string bad)
            throw new UsageException($"--attach '{s}': {bad.Replace("host-if", "interface", StringComparison.Ordinal)}");
        string? ns = null;
        bool xdp = false;
        foreach (string opt in parts.Skip(1))
        {
            if (opt == "xdp")
                xdp = true;
            else if (opt.StartsWith("netns=", StringComparison.Ordinal) && DpdkSharp.Netns.IsValidName(opt["netns=".Length..]))
                ns = opt["netns=".Length..];
            else
                throw new UsageException($"--attach '{s}': expected <ifname>[,netns=<ns>][,xdp] (bad '{opt}')");
        }
        return new AttachSpec(parts[0], ns, xdp);
    }

    public static PairSpec ParsePair(string s)
    {
        string[] parts = s.Split(',');
        int eq = parts[0].IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == parts[0].Length - 1)
            throw new UsageException($"--pair '{s}': expected <port>[.<vid>[.<inner>]]=<host-if>[,tun|,veth|,veth-xdp][,netns=<ns>][,persist][,table=<n>][,tpid=88a8|8100]");
        string port = parts[0][..eq], hostIf = parts[0][(eq + 1)..];
        if (PairManager.ValidateHostIf(hostIf) is string bad)
            throw new UsageException($"--pair '{s}': {bad}");
        bool tun = false, persist = false;
        string? ns = null;
        uint? table = null;
        ushort? tpid = null;
        MirrorKind? kind = null;
        foreach (string opt in parts.Skip(1))
        {
            if (opt.StartsWith("tpid=", StringComparison.Ordinal))
            {
                tpid = Api.RoutingCommands.ParseTpid(opt["tpid=".Length..])
                    ?? throw new UsageException($"--pair '{s}': tpid '{opt["tpid=".Length..]}' is 88a8 (802.1ad) or 8100 (802.1Q)");
                continue;
            }
            if (opt.StartsWith("table=", StringComparison.Ordinal))
            {
                if (!uint.TryParse(opt.AsSpan("table=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out uint t) || t is 0 or 255)
                    throw new UsageException($"--pair '{s}': bad table '{opt["table=".Length..]}' (a kernel table id: 1-254, or above 255)");
                table = t;
            }
            else if (opt == "tun")
                tun = true;
            else if (opt == "veth")
                kind = MirrorKind.VethPacket;
            else if (opt == "veth-xdp")
                kind = MirrorKind.VethXdp;
            else if (opt == "persist")
                persist = true;
            else if (opt.StartsWith("netns=", StringComparison.Ordinal))
            {
                ns = opt["netns=".Length..];
                if (!DpdkSharp.Netns.IsValidName(ns))
                    throw new UsageException($"--pair '{s}': bad netns name '{ns}'");
            }
            else
                throw new UsageException($"--pair '{s}': unknown pair option '{opt}'");
        }
        if (tun && kind is not null)
            throw new UsageException($"--pair '{s}': a mirror is a TUN or a veth, not both");
        return new PairSpec(port, hostIf, tun, ns, persist, table, tpid, kind);
    }
}

/// <summary>How the TCP listener (--http) admits clients. Every write needs a read-write
/// credential; reads need one too unless <see cref="PublicReads"/>; a listener that is not on a
/// loopback address must use TLS.</summary>
public sealed record HttpSecurity(string? TokenFile = null, bool PublicReads = false, string? TlsCert = null, string? TlsKey = null, string? ClientCa = null)
{
    public bool Tls => TlsCert is not null;

    /// <summary>Checks the TCP listeners (--http, --grpc) against the credential options.</summary>
    public void Check(System.Net.IPEndPoint? http, System.Net.IPEndPoint? grpc = null)
    {
        bool any = TokenFile is not null || PublicReads || TlsCert is not null || TlsKey is not null || ClientCa is not null;
        if (http is null && grpc is null)
        {
            if (any)
                throw new UsageException("--api-token-file, --http-public-reads and --http-tls-*/--http-client-ca apply to --http and --grpc, and neither is given");
            return;
        }
        if (http is not null)
            CheckOne(http, "--http");
        if (grpc is not null)
            CheckOne(grpc, "--grpc");
    }

    private void CheckOne(System.Net.IPEndPoint http, string option)
    {
        if ((TlsCert is null) != (TlsKey is null))
            throw new UsageException("--http-tls-cert and --http-tls-key go together");
        if (ClientCa is not null && !Tls)
            throw new UsageException("--http-client-ca needs TLS (--http-tls-cert and --http-tls-key)");
        if (!System.Net.IPAddress.IsLoopback(http.Address) && !Tls)
            throw new UsageException($"{option} {http}: not a loopback address, so it needs TLS (--http-tls-cert/--http-tls-key); tokens must not cross a network in clear text");
        if (TokenFile is null && ClientCa is null && !PublicReads)
            throw new UsageException($"{option} needs a way to admit clients: --api-token-file, --http-client-ca (TLS client certificates), or --http-public-reads (reads only)");
    }
}

