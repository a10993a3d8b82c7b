namespace LinuxCp.Management.Contracts;

/// <summary>One command: its words, its argument synopsis and a line of help.</summary>
public sealed record CommandSpec(string Path, string Args, string Help)
{
    public string[] Words { get; } = Path.Split(' ');

    public string Usage => Args.Length == 0 ? Path : $"{Path} {Args}";
}

/// <summary>Every command lcpd answers, shared by the daemon (dispatch) and lcpctl (help, usage).</summary>
public static class CommandCatalog
{
    private static readonly string[][] Writes =
        [["clear"], ["set"], ["debug"], ["trace", "add"], ["capture", "start"], ["capture", "stop"], ["lcp", "create"], ["lcp", "delete"], ["attach"], ["detach"], ["lcp", "resync"], ["classify"], ["flow", "enable"], ["flow", "disable"],
         ["config", "update"], ["config", "delete"], ["config", "resync"], ["config", "confirm"], ["config", "rollback"]];

    /// <summary>Does this command change the router's state (what the audit log records)?</summary>
    public static bool ChangesState(IReadOnlyList<string> argv)
    {
        // Loops, not LINQ: asked on every request, and a closure per entry is garbage per request.
        foreach (string[] w in Writes)
        {
            if (argv.Count < w.Length)
                continue;
            int i = 0;
            while (i < w.Length && argv[i] == w[i])
                i++;
            if (i == w.Length)
                return true;
        }
        return false;
    }

    public static readonly CommandSpec[] All =
    [
        new("show version", "", "lcpd, DPDK and runtime versions"),
        new("doctor", "", "checklist of the host and this lcpd (hugepages, IOMMU, NICs, CPUs, mirrors' IPv6, GC, ...): OK/WARN/FAIL with the fix"),
        new("show interfaces", "", "ports and mirrors with counters"),
        new("show bond", "", "bonds: mode, hash, members with their link, LACP actor/partner state and counters"),
        new("show lcp", "", "port/mirror pairs with both sides' link state (port link, mirror admin state and carrier)"),
        new("set interface state", "<port> up|down", "admin state of a port: made on its mirror (Linux follows, and the port follows Linux) and asked of its driver"),
        new("set interface mtu", "<port> <bytes>", "MTU of a port: made on its mirror, which the port follows (unpaired: on the port)"),
        new("show errors", "", "drop and punt counters by reason"),
        new("show buffers", "", "mbuf pools: size and in-use counts"),
        new("clear errors", "", "reset the drop and punt counters shown by show errors"),
        new("show runtime", "", "per worker and per path: calls, packets, packets/call, cycles/packet, longest loop gap"),
        new("clear runtime", "", "reset the runtime figures and latency histograms"),
        new("show latency", "", "latency percentiles per path (forward, punt, x-connect) and of loop gaps"),
        new("trace add", "<n> [port <port>]", "trace the next n packets per worker (on one port or all)"),
        new("show trace", "", "traced packets: headers, classification, FIB result, rewrite, egress or punt reason"),
        new("clear trace", "", "stop tracing and drop the traced packets"),
        new("capture start", "port <port> [rx|tx|both] [max <n>] file <path.pcap>", "write a port's packets to a pcap file"),
        new("capture stop", "", "stop the capture and close its file"),
        new("show capture", "", "state of the current or last capture"),
        new("show dpdk", "", "EAL arguments, lcores with their worker and queue, ports, mempools"),
        new("show memory", "", "managed heap, GC counts and pauses, RSS, hugepages, DPDK heap"),
        new("show log-level", "", "the current log level"),
        new("set log-level", "<trace|debug|info|warning|error|critical>", "change the log level at run time"),
        new("show ip fib", "[table <n>] [netns <ns>] [<prefix>]", "IPv4 FIB of a table (default: main): all routes, or the entry a prefix/address matches"),
        new("show ip fib summary", "", "route counts per family and table, capacity, pending and refused changes, sync progress"),
        new("show ip6 fib", "[table <n>] [netns <ns>] [<prefix>]", "IPv6 FIB"),
        new("show ip neighbors", "", "resolved neighbours (IPv4 and IPv6) in the fast path"),
        new("lcp resync", "", "re-create lost mirrors, re-read Linux's links, addresses, routes, neighbours, nexthops and rules, fix the FIB"),
        new("lcp verify", "[table <n>] [netns <ns>]", "compare Linux's tables with the FIB route for route; exit 1 when they differ"),
        new("lcp create", "<port>[.<vid>[.<inner-vid>]] host-if <name> [netns <ns>] [tun|veth|veth-xdp] [persist] [table <n>] [tpid 88a8|8100]",
            "create a mirror for a port, or for a VLAN/QinQ sub-interface of it, made with the pair (persist: keep the mirror, and adopt it at the next start)"),
        new("lcp delete", "<port|host-if>", "delete a pair and its mirror"),
        new("attach", "<ifname> [netns <ns>] [xdp]", "make an existing kernel interface (a VM's tap, a veth, a NIC without a DPDK driver) a dataplane port, read through af_packet (or af_xdp); its kernel side is quietened"),
        new("detach", "<port|ifname>", "give an attached interface back to the kernel (its pairs must be deleted first)"),
        new("config get", "[--source <s>] [--yaml|--json]", "the desired configuration (vpp-agent's Config shape plus lcp_config), as YAML by default"),
        new("config update", "-f <file> [--replace] [--dry-run] [--confirm <s>] [--best-effort]", "apply a document as one transaction: validate, plan, apply, verify; any failure reverts all of it"),
        new("config delete", "-f <file> | <key>...", "remove items (a key ending in '/' removes everything under it)"),
        new("config validate", "-f <file>", "check a document and plan it without changing anything"),
        new("config retrieve", "", "what Linux runs in the managed namespaces, each object CONFIGURED (lcpd's) or OBTAINED (not lcpd's)"),
        new("config status", "[<key-prefix>]", "state of each key: CONFIGURED, PENDING, FAILED, RETRYING, INVALID, with the reason"),
        new("config diff", "[-f <file> [--replace]] | [<rev> [<rev2>]]", "what a document would change, or what changed between revisions"),
        new("config history", "[<seq>] [--details]", "transactions: source, outcome, operations, duration"),
        new("config resync", "[full|downstream|upstream]", "read Linux back and repair what differs (downstream), re-evaluate pending items (upstream), or both"),
        new("config confirm", "", "keep a commit made with --confirm (otherwise it reverts when its time is up)"),
        new("config rollback", "<rev> [--confirm <s>] [--dry-run]", "make the desired state that of an earlier revision"),
        new("config watch", "", "stream state changes of config keys until interrupted"),
        new("config graph", "", "the dependency graph as graphviz dot"),
        new("classify add rule", "<port> [input|output] [src <prefix>] [dst <prefix>] [proto <tcp|udp|icmp|icmp6|N>] [sport <p>[-<q>]] [dport <p>[-<q>]] [icmp-type <t>[-<u>]] [icmp-code <c>[-<d>]] [tcp-flags <value>/<mask>] [drop|pass|reflect] [priority <0-4095>]",
            "add a classifier rule on a port's input (before punt/forward) or output (forwarded and x-connected traffic); prints its id (two ids when no address gives the family)"),
        new("classify del rule", "<id> | all [interface <port>]", "delete a classifier rule, or all of them (of one port)"),
        new("show classify", "[interface <port>]", "classifier rules in match order with their packet and byte counters"),
        new("clear classify", "", "reset the classifier rules' counters"),
        new("flow enable", "<port>", "track every flow through a port (both directions, RX and TX): state, counters, timeouts"),
        new("flow disable", "<port>", "stop tracking a port's flows (they expire at the next sweep)"),
        new("show flows", "[interface <port>] [max <n>]", "tracked flows: endpoints, state, packets, bytes, age (default max 100)"),
        new("show flow summary", "", "flows per state, inserts, expiries, table full, capacity, timeouts"),
        new("clear flows", "", "empty the flow tables"),
        new("set flow timeouts", "[tcp-established <s>] [tcp-transitory <s>] [udp <s>] [icmp <s>] [other <s>]", "idle timeouts of flows by state"),
        new("set flow full-policy", "<drop|pass>", "what a new flow gets when the flow table is full (pass: forwarded untracked)"),
        new("show punt policers", "[interface <port>]", "punt policer classes: budget per port (packets/s, burst), packets passed and policed"),
        new("set punt policer", "<class> [interface <port>] rate <pps> burst <n> | off | default", "change a punt class's budget per port (one port's own with interface; default: back to the class's), or stop policing it"),
        new("debug fib-drop", "[table <n>] [netns <ns>] <prefix>", "remove a prefix from the dataplane only, as if an update was lost (needs --debug-commands)"),
    ];

    /// <summary>Finds the command whose words start <paramref name="argv"/> (longest match).
    /// Returns null if none; <paramref name="rest"/> holds the remaining words.</summary>
    public static CommandSpec? Match(IReadOnlyList<string> argv, out string[] rest)
    {
        CommandSpec? best = null;
        foreach (CommandSpec c in All)
        {
            if (c.Words.Length > argv.Count)
                continue;
            bool ok = true;
            for (int i = 0; i < c.Words.Length && ok; i++)
                ok = string.Equals(c.Words[i], argv[i], StringComparison.Ordinal);
            if (ok && (best is null || c.Words.Length > best.Words.Length))
                best = c;
        }
        if (best is null || best.Words.Length == argv.Count)
        {
            rest = [];
            return best;
        }
        rest = new string[argv.Count - best.Words.Length];
        for (int i = 0; i < rest.Length; i++)
            rest[i] = argv[best.Words.Length + i];
        return best;
    }
}
