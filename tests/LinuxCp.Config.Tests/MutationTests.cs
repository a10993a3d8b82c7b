using LinuxCp.Config.Engine;
using LinuxCp.Config.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace LinuxCp.Config.Tests;

/// <summary>Hostile documents: valid ones with bytes flipped, cut, duplicated and spliced (a fixed
/// seed, so a failure reproduces). Reading and validating them must end in a clear error or a
/// document, never another exception, a hang or a change to Linux.</summary>
public sealed class MutationTests
{
    private const string Json = """
        {"linux_config":{"interfaces":[{"name":"v1","type":"VETH","namespace":{"type":"NSID","reference":"a"},"enabled":true,
        "ip_addresses":["10.1.0.1/24","2001:db8::1/64"],"phys_address":"02:00:00:00:00:01","mtu":1400,"veth":{"peer_if_name":"v2"}},
        {"name":"v2","type":"VETH","namespace":{"type":"PID","reference":"1"},"veth":{"peer_if_name":"v1","rx_checksum_offloading":"CHKSM_OFFLOAD_DISABLED"}}],
        "arp_entries":[{"interface":"v1","ip_address":"10.1.0.9","hw_address":"02:00:00:00:00:09"}],
        "routes":[{"outgoing_interface":"v1","scope":"GLOBAL","dst_network":"10.9.0.0/16","gw_addr":"10.1.0.2","metric":5}],
        "iptables_rulechains":[{"name":"c","chain_type":"CUSTOM","chain_name":"X","rules":["-p tcp --dport 22 -j 'DROP'"]}]},
        "lcp_config":{"pairs":[{"port":"p0","host_if":"lcp0","netns":"rt"}]}}
        """;

    private static readonly string Yaml = DocumentWriter.Yaml(System.Text.Json.Nodes.JsonNode.Parse(Json));

    private static string Mutate(string s, Random r)
    {
        char[] alphabet = ['{', '}', '[', ']', ':', ',', '"', '\'', '-', ' ', '\n', '\t', '&', '*', '!', '%', '/', '0', '9', 'a', '\0', '\u00ff', '\u2028'];
        var b = new System.Text.StringBuilder(s);
        int edits = 1 + r.Next(6);
        for (int k = 0; k < edits && b.Length > 0; k++)
        {
            int at = r.Next(b.Length);
            switch (r.Next(5))
            {
                case 0: b[at] = alphabet[r.Next(alphabet.Length)]; break;
                case 1: b.Remove(at, Math.Min(b.Length - at, 1 + r.Next(20))); break;
                case 2: b.Insert(at, alphabet[r.Next(alphabet.Length)]); break;
                case 3:
                    int from = r.Next(b.Length);
                    b.Insert(at, b.ToString(from, Math.Min(30, b.Length - from)));
                    break;
                default: b.Length = at; break;
            }
        }
        return b.ToString();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MutatedDocuments_ClearErrorOrDocument_NeverAnotherException(bool yaml)
    {
        var r = new Random(yaml ? 12 : 11);
        var linux = new FakeLinux { AutoCreate = false };
        using var engine = new ConfigEngine(linux, new FakePairs(linux), new EngineOptions { StateDirectory = null }, NullLogger.Instance);
        int parsed = 0, refused = 0;
        for (int i = 0; i < 4000; i++)
        {
            string doc = Mutate(yaml ? Yaml : Json, r);
            try
            {
                var (d, paths) = DocumentReader.Parse(doc);
                parsed++;
                TxnResult t = engine.Update("fuzz", d, new TxnOptions { DryRun = true, Paths = paths });
                Assert.NotNull(t.Outcome);
            }
            catch (ConfigException e)
            {
                refused++;
                Assert.False(string.IsNullOrWhiteSpace(e.Message), doc);
            }
        }
        Assert.True(parsed > 0 && refused > 0, $"parsed {parsed}, refused {refused}");
        Assert.Empty(linux.Ops); // dry runs, and nothing namespaces-creating
    }

    [Fact]
    public void MutatedKvValues_ClearErrorOrItem()
    {
        var r = new Random(13);
        const string value = """{"outgoing_interface":"veth1","scope":"GLOBAL","dst_network":"10.0.2.0/24","metric":100}""";
        for (int i = 0; i < 3000; i++)
        {
            try
            {
                DocumentReader.ParseValue("config/linux/l3/v2/route/10.0.2.0/24/veth1", Mutate(value, r));
            }
            catch (ConfigException)
            {
            }
        }
    }
}
