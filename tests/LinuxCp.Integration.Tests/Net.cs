using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

internal static class Net
{
    /// <summary>Pings from a namespace; returns the ping output, failing the test on loss.</summary>
    public static string Ping(string ns, string dst, int count = 3, bool v6 = false)
    {
        CmdResult r = Cmd.InNs(ns, "ping", v6 ? "-6" : "-4", "-c", count.ToString(), "-i", "0.2", "-W", "3", dst);
        Assert.True(r.Code == 0, $"ping {dst} from {ns} failed: {r}");
        return r.Out;
    }

    public static bool PingOnce(string ns, string dst, bool v6 = false, int waitSeconds = 1) =>
        Cmd.InNs(ns, "ping", v6 ? "-6" : "-4", "-c", "1", "-W", waitSeconds.ToString(), dst).Code == 0;

    public static JsonObject Find(JsonNode array, string key, string value) =>
        array.AsArray().Select(n => n!.AsObject()).FirstOrDefault(o => o[key]?.GetValue<string>() == value)
        ?? throw new Xunit.Sdk.XunitException($"no entry with {key}={value} in {array.ToJsonString()}");

    public static long ErrorCount(LcpdProcess l, string reason) =>
        Find(l.CtlJson("show", "errors"), "reason", reason)["count"]!.GetValue<long>();

    /// <summary>Packets Linux forwarded in a namespace (Ip ForwDatagrams / Ip6OutForwDatagrams).</summary>
    public static long LinuxForwarded(string ns, bool v6)
    {
        string text = Cmd.InNsOk(ns, "cat", v6 ? "/proc/net/snmp6" : "/proc/net/snmp");
        if (v6)
            return long.Parse(text.Split('\n').First(l => l.StartsWith("Ip6OutForwDatagrams", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        string[] lines = text.Split('\n').Where(l => l.StartsWith("Ip:", StringComparison.Ordinal)).ToArray();
        string[] names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, "ForwDatagrams")]);
    }

    public static bool LinkExists(string ns, string ifname) =>
        Cmd.InNs(ns, "ip", "link", "show", "dev", ifname).Code == 0;

    /// <summary>Sends raw Ethernet frames (hex strings) out of an interface in a namespace.</summary>
    public static void SendRawFrames(string ns, string ifname, IEnumerable<string> hexFrames)
    {
        const string script = """
            import socket, sys
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind((sys.argv[1], 0))
            for h in sys.argv[2:]:
                s.send(bytes.fromhex(h))
            """;
        CmdResult r = Cmd.InNs(ns, "/usr/bin/python3", ["-c", script, ifname, .. hexFrames]);
        Assert.True(r.Code == 0, $"raw send failed: {r}");
    }

    public static void WaitUntil(Func<bool> cond, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (cond())
                return;
            Thread.Sleep(100);
        }
        Assert.Fail($"timed out waiting for {what}");
    }
}
