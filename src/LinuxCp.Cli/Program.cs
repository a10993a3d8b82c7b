using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Cli;

internal static class Lcpctl
{
    public const int Ok = 0;
    public const int LcpdError = 1;
    public const int UsageError = 2;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static int Main(string[] args)
    {
        string socket = Environment.GetEnvironmentVariable("LCPD_SOCKET") ?? Protocol.DefaultSocket;
        bool json = false, help = false;
        var words = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--socket" or "-s":
                    if (i + 1 >= args.Length)
                        return Usage("--socket needs a path");
                    socket = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                case "--help" or "-h":
                    help = true;
                    break;
                default:
                    words.Add(args[i]);
                    break;
            }
        }

        CommandSpec? spec = words.Count == 0 ? null : CommandCatalog.Match(words, out _);
        if (help || words.Count == 0 || words[0] == "help")
        {
            Console.Write(spec is null ? GeneralHelp() : $"usage: lcpctl [--socket <path>] {spec.Usage} [--json]\n  {spec.Help}\n");
            return words.Count == 0 && !help ? UsageError : Ok;
        }
        if (spec is null)
            return Usage($"unknown command '{string.Join(' ', words)}'");

        // A capture file is written by lcpd: resolve a relative path against our directory.
        if (spec.Path == "capture start")
        {
            int fi = words.IndexOf("file");
            if (fi >= 0 && fi + 1 < words.Count && !Path.IsPathFullyQualified(words[fi + 1]))
                words[fi + 1] = Path.GetFullPath(words[fi + 1]);
        }

        // config commands carry documents as documents: -f <file> (or - for stdin) is read here
        // and sent as the request's input.
        string? input = null;
        if (spec.Words[0] == "config")
        {
            int fi = words.IndexOf("-f");
            if (fi >= 0)
            {
                if (fi + 1 >= words.Count)
                    return Usage("-f needs a file (or - for standard input)");
                try
                {
                    input = words[fi + 1] == "-" ? Console.In.ReadToEnd() : File.ReadAllText(words[fi + 1]);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"lcpctl: {words[fi + 1]}: {e.Message}");
                    return UsageError;
                }
                words.RemoveRange(fi, 2);
            }
            words.Remove("--yaml");
            if (spec.Path == "config watch")
                return Watch(socket, json);
        }

        string reply;
        try
        {
            // A full-table resync or verify dumps Linux's tables (seconds per million routes);
            // a large configuration takes as long to apply.
            TimeSpan timeout = spec.Path is "lcp resync" or "lcp verify" || spec.Words[0] == "config" ? TimeSpan.FromMinutes(5) : Timeout;
            reply = Call(socket, words, timeout, input);
        }
        catch (SocketException e) when (spec.Path == "doctor")
        {
            // The host's half of the checklist does not need lcpd.
            var d = LinuxCp.Management.Doctor.Checklist.Run(LinuxCp.ControlPlane.Host.HostFacts.Real, null, null, $"not reachable at {socket}: {e.Message}");
            Console.Write(json ? LinuxCp.Management.Doctor.Checklist.Json(d) : LinuxCp.Management.Doctor.Checklist.Format(d));
            return d.Fail > 0 ? LcpdError : Ok;
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"lcpctl: cannot reach lcpd at {socket}: {e.Message}");
            Console.Error.WriteLine("  is lcpd running? start it with: lcpd [EAL options] -- --api-socket <path> ...; or pass --socket <path>");
            return LcpdError;
        }
        catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException)
        {
            Console.Error.WriteLine($"lcpctl: no reply from lcpd at {socket}: {e.Message}");
            return LcpdError;
        }

        JsonNode? root;
        try
        {
            root = JsonNode.Parse(reply);
        }
        catch (System.Text.Json.JsonException)
        {
            Console.Error.WriteLine("lcpctl: malformed reply from lcpd");
            return LcpdError;
        }
        if (root?["ok"]?.GetValue<bool>() != true)
        {
            Console.Error.WriteLine($"lcpctl: {root?["error"]?.GetValue<string>() ?? "unknown error"}");
            return LcpdError;
        }
        JsonNode? result = root["result"];
        if (json)
        {
            Console.WriteLine(result?.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) ?? "null");
        }
        else
        {
            Console.Write(Views.Format(spec.Path, result));
        }
        if (spec.Path == "doctor" && result?["fail"]?.GetValue<int>() > 0)
            return LcpdError;
        // lcp verify answers; differences are its failure (like diff).
        if (spec.Path == "lcp verify" && result?["in_sync"]?.GetValue<bool>() == false)
            return LcpdError;
        // A best-effort transaction that left items failed.
        if (spec.Words[0] == "config" && result is JsonObject { } ro && ro["ok"] is JsonValue okv && !okv.GetValue<bool>())
            return LcpdError;
        return Ok;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"lcpctl: {message}");
        Console.Error.WriteLine("Try 'lcpctl --help'.");
        return UsageError;
    }

    private static string GeneralHelp()
    {
        var sb = new StringBuilder();
        sb.Append("usage: lcpctl [--socket <path>] <command> [--json]\n\n");
        sb.Append("Talks to lcpd over its API socket (default ").Append(Protocol.DefaultSocket).Append(", or $LCPD_SOCKET).\n\ncommands:\n");
        int w = CommandCatalog.All.Max(c => c.Usage.Length);
        foreach (CommandSpec c in CommandCatalog.All)
            sb.Append("  ").Append(c.Usage.PadRight(w)).Append("  ").Append(c.Help).Append('\n');
        sb.Append("\n'lcpctl <command> --help' shows one command. Exit codes: 0 ok, 1 error from lcpd (lcp verify: differences found), 2 usage.\n");
        return sb.ToString();
    }

    /// <summary>config watch: prints each state change as it comes, until interrupted.</summary>
    private static int Watch(string path, bool json)
    {
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            using var stream = new NetworkStream(s, ownsSocket: false);
            stream.Write(Encoding.UTF8.GetBytes(Protocol.Request(["config", "watch"]) + "\n"));
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (reader.ReadLine() is string line)
            {
                JsonNode? root = JsonNode.Parse(line);
                if (root?["ok"]?.GetValue<bool>() != true)
                {
                    Console.Error.WriteLine($"lcpctl: {root?["error"]?.GetValue<string>() ?? "unknown error"}");
                    return LcpdError;
                }
                JsonNode? r = root["result"];
                if (json)
                    Console.WriteLine(r?.ToJsonString());
                else if (r?["watching"] is not null)
                    Console.WriteLine($"watching config state changes (revision {r["revision"]}); Ctrl-C to stop");
                else
                    Console.WriteLine($"{r?["time"]} {r?["state"],-10} {r?["key"]}{(r?["reason"]?.GetValue<string>() is { Length: > 0 } why ? "  (" + why + ")" : "")}");
                Console.Out.Flush();
            }
            return Ok;
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"lcpctl: cannot reach lcpd at {path}: {e.Message}");
            return LcpdError;
        }
        catch (IOException)
        {
            return Ok;
        }
    }

    private static string Call(string path, IReadOnlyList<string> argv, TimeSpan timeout, string? input = null)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        s.SendTimeout = (int)timeout.TotalMilliseconds;
        s.Connect(new UnixDomainSocketEndPoint(path));
        using var stream = new NetworkStream(s, ownsSocket: false);
        byte[] req = Encoding.UTF8.GetBytes(Protocol.Request(argv, input) + "\n");
        stream.Write(req);
        var buf = new MemoryStream();
        var chunk = new byte[16384];
        while (true)
        {
            int n = stream.Read(chunk);
            if (n == 0)
                break;
            int nl = Array.IndexOf(chunk, (byte)'\n', 0, n);
            if (nl >= 0)
            {
                buf.Write(chunk, 0, nl);
                break;
            }
            buf.Write(chunk, 0, n);
        }
        if (buf.Length == 0)
            throw new IOException("connection closed");
        return Encoding.UTF8.GetString(buf.GetBuffer(), 0, (int)buf.Length);
    }
}
