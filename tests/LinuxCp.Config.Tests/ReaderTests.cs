using System.Text.Json.Nodes;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;

namespace LinuxCp.Config.Tests;

public sealed class ReaderTests
{
    private const string AgentctlYaml = """
        linuxConfig:
          interfaces:
            - name: tap1
              type: TAP_TO_VPP
              namespace:
                type: NSID
                reference: ns2
              hostIfName: tap-host
              enabled: true
              ipAddresses:
                - 172.52.45.127/24
              physAddress: BC:FE:E9:5E:07:04
              mtu: 1500
              tap:
                vppTapIfName: tap-host
          arpEntries:
            - interface: veth1
              ipAddress: 130.0.0.1
              hwAddress: 46:06:18:DB:05:3A
          routes:
            - outgoingInterface: veth1
              scope: GLOBAL
              dstNetwork: 10.0.2.0/24
              metric: 100
        """;

    [Fact]
    public void AgentctlYaml_LowerCamelCase_LoadsAsSnakeCaseJson()
    {
        var (doc, paths) = DocumentReader.Parse(AgentctlYaml);
        LinuxInterface tap = Assert.Single(doc.Interfaces);
        Assert.Equal(InterfaceType.TapToVpp, tap.Type);
        Assert.Equal(new NamespaceRef(NamespaceType.Nsid, "ns2"), tap.Namespace);
        Assert.Equal(1500u, tap.Mtu);
        Assert.Equal("tap-host", tap.Tap!.VppTapIfName);
        Assert.Equal("linuxConfig.interfaces[0]", paths[tap]);
        Assert.Equal("130.0.0.1", doc.ArpEntries[0].IpAddress);
        Assert.Equal(RouteScope.Global, doc.Routes[0].Scope);
        // The same document as the seed's JSON with snake_case names is the same model.
        string json = DocumentWriter.Document(doc).ToJsonString();
        Assert.Contains("\"vpp_tap_if_name\":\"tap-host\"", json, StringComparison.Ordinal);
        var (again, _) = DocumentReader.Parse(json);
        Assert.Equal(DocumentWriter.Document(doc).ToJsonString(), DocumentWriter.Document(again).ToJsonString());
        // And through YAML as lcpctl config get prints it.
        var (viaYaml, _) = DocumentReader.Parse(DocumentWriter.Yaml(DocumentWriter.Document(doc)));
        Assert.Equal(json, DocumentWriter.Document(viaYaml).ToJsonString());
    }

    [Theory]
    [InlineData("linux_config: {interfaces: [{name: a, type: VETH, speed: 10}]}", "linux_config.interfaces[0].speed: unknown field")]
    [InlineData("linux_config: {interfaces: [{name: a, type: 9}]}", "linux_config.interfaces[0].type: unknown value 9")]
    [InlineData("linux_config: {interfaces: [{name: a, type: VETH, mtu: -1}]}", "linux_config.interfaces[0].mtu: expected an unsigned 32-bit integer")]
    [InlineData("linux_config: {interfaces: [{name: a, mtu: 1, mtu: 2}]}", "malformed YAML at line 1, column 47: Duplicate key")]
    [InlineData("{\"linux_config\": {\"interfaces\": [{\"name\": \"a\", \"mtu\": 1, \"mtu\": 2}]}}", "malformed JSON")]
    [InlineData("linux_config: {interfaces: {name: a}}", "linux_config.interfaces: expected a list, got an object")]
    [InlineData("linux_config: {routes: [{dst_network: 10.0.0.0/8}]}", "linux_config.routes[0].outgoing_interface: required")]
    [InlineData("vpp_config: {}", "vpp_config: unknown field")]
    [InlineData("", "empty document")]
    [InlineData("[1, 2]", "expected an object, got a list")]
    public void Malformed_ErrorNamesTheField(string doc, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => DocumentReader.Parse(doc));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Oversized_Refused_BytesAndItems()
    {
        string many = "linux_config: {interfaces: [" + string.Join(",", Enumerable.Range(0, 210_000).Select(i => $"{{name: i{i}}}")) + "]}";
        Assert.Contains("more than 200000 items", Assert.Throws<ConfigException>(() => DocumentReader.Parse(many)).Message, StringComparison.Ordinal);
        string huge = "linux_config: {interfaces: [{name: " + new string('x', DocumentReader.MaxDocumentBytes) + "}]}";
        Assert.Contains("larger than", Assert.Throws<ConfigException>(() => DocumentReader.Parse(huge)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{a: ", "}")]
    [InlineData("[", "]")]
    [InlineData("- ", "")]
    public void DeepNesting_RefusedWithAnError_NotAStackOverflow(string open, string close)
    {
        // 200k levels overflowed the YAML library's recursive loader (a process crash no handler
        // can catch); the limit applies before it.
        string deep = "linux_config:\n  interfaces:\n    " + string.Concat(Enumerable.Repeat(open, 200_000)) + "1" + string.Concat(Enumerable.Repeat(close, 200_000));
        var e = Assert.Throws<ConfigException>(() => DocumentReader.Parse(deep));
        Assert.Contains($"nested deeper than {DocumentReader.MaxDepth} levels", e.Message, StringComparison.Ordinal);
        // The limit itself: 32 levels of lists are read (and then refused by the schema), 33 are not.
        string at = "linux_config: {interfaces: " + new string('[', DocumentReader.MaxDepth - 2) + new string(']', DocumentReader.MaxDepth - 2) + "}";
        Assert.DoesNotContain("nested deeper", Assert.Throws<ConfigException>(() => DocumentReader.Parse(at)).Message, StringComparison.Ordinal);
        string over = "linux_config: {interfaces: " + new string('[', DocumentReader.MaxDepth - 1) + new string(']', DocumentReader.MaxDepth - 1) + "}";
        Assert.Contains("nested deeper", Assert.Throws<ConfigException>(() => DocumentReader.Parse(over)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KvValue_KindFromKey_AndTheKeyMustMatch()
    {
        ConfigItem i = DocumentReader.ParseValue("config/linux/l3/v2/route/10.0.2.0/24/veth1",
            """{"outgoing_interface":"veth1","scope":"GLOBAL","dst_network":"10.0.2.0/24","metric":100}""");
        Assert.Equal(ItemKind.Route, i.Kind);
        var e = Assert.Throws<ConfigException>(() => DocumentReader.ParseValue("config/linux/l3/v2/route/10.0.3.0/24/veth1",
            """{"outgoing_interface":"veth1","dst_network":"10.0.2.0/24"}"""));
        Assert.Contains("belongs under config/linux/l3/v2/route/10.0.2.0/24/veth1", e.Message, StringComparison.Ordinal);
        Assert.Throws<ConfigException>(() => DocumentReader.ParseValue("config/other/x", "{}"));
    }

    [Fact]
    public void Microservices_DockerApiAnswers_LabelAndPid()
    {
        JsonNode list = JsonNode.Parse("""[{"Id":"abc123"},{"Id":"../etc"},{"Id":"def456"}]""")!;
        Assert.Equal(["abc123", "def456"], Microservices.ContainerIds(list));
        JsonNode c = JsonNode.Parse("""{"Config":{"Env":["PATH=/bin","MICROSERVICE_LABEL=vnf1"]},"State":{"Running":true,"Pid":4242}}""")!;
        Assert.Equal("vnf1", Microservices.LabelOf(c));
        Assert.Equal(4242, Microservices.PidOf(c));
        Assert.Null(Microservices.PidOf(JsonNode.Parse("""{"State":{"Running":false,"Pid":0}}""")));
        var (pid, reason) = new Microservices("/nonexistent/docker.sock").Resolve("vnf1");
        Assert.Equal(0, pid);
        Assert.Contains("no container runtime socket", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RealNamespaceLookup_MicroserviceResolvedToItsProcess_PidAndFdKinds()
    {
        var linux = new NetlinkLinux(label => label == "me" ? (Environment.ProcessId, "") : (0, "no such label"));
        Assert.Equal($"/proc/{Environment.ProcessId}/ns/net", linux.Namespace(new NamespaceRef(NamespaceType.Microservice, "me"), false, out _));
        Assert.Null(linux.Namespace(new NamespaceRef(NamespaceType.Microservice, "other"), false, out string why));
        Assert.Contains("no such label", why, StringComparison.Ordinal);
        using var child = System.Diagnostics.Process.Start("sleep", "30");
        try
        {
            Assert.Equal($"/proc/{child.Id}/ns/net", linux.Namespace(new NamespaceRef(NamespaceType.Pid, child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), false, out _));
        }
        finally
        {
            child.Kill();
        }
        Assert.Null(linux.Namespace(new NamespaceRef(NamespaceType.Pid, "999999999"), false, out why));
        Assert.Contains("no process", why, StringComparison.Ordinal);
        Assert.Null(linux.Namespace(new NamespaceRef(NamespaceType.Fd, "/etc/hostname"), false, out why));
        Assert.Contains("not a network namespace file", why, StringComparison.Ordinal);
    }
}
