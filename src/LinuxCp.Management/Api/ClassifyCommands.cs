using System.Globalization;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Features;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The classifier commands: add and delete rules, show them with their counters,
/// reset the counters. Rules sit on dataplane (phy) ports, by name.</summary>
public sealed class ClassifyCommands : IDisposable
{
    private readonly RouterState _s;

    public ClassifyCommands(RouterState state, Action? ensureFlowTables = null, Func<AclRule[], bool, IAclMatcher>? matcher = null)
    {
        _s = state;
        Rules = new Classifier(state.Engine, PortOf, matcher ?? ((rules, v6) => new RteAclMatcher(rules, v6, -1)),
            PuntPolicers.Defaults((long)DpdkSharp.Eal.TscHz, state.Engine.WorkerCount), ensureFlowTables);
        state.Pairs.PortRemoved += Rules.ForgetPort;
    }

    public Classifier Rules { get; }

    private ushort? PortOf(string name) => _s.FindPhy(name)?.Id;

    public List<ClassifyRuleDto> Add(string[] rest)
    {
        IReadOnlyList<AclRule> parsed;
        try
        {
            parsed = AclRuleParser.Parse(rest);
        }
        catch (AclRuleParser.AclParseException e)
        {
            throw new ApiException(e.Message);
        }
        try
        {
            return [.. Rules.Add(parsed).Select(r => Dto(new AclRuleState(r, 0, 0)))];
        }
        catch (ClassifierException e)
        {
            throw new ApiException(e.Message);
        }
    }

    /// <summary>Installs the rules of a file (one rule per line in `classify add rule` words,
    /// blank lines and '#' comments ignored) as one change: all of them or, on the first bad
    /// line, none, with an error naming the file and line.</summary>
    public int LoadFile(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"--classify-file {path}: {e.Message}", e);
        }
        var rules = new List<AclRule>();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int hash = line.IndexOf('#');
            if (hash >= 0)
                line = line[..hash];
            string[] words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
                continue;
            try
            {
                rules.AddRange(AclRuleParser.Parse(words));
            }
            catch (AclRuleParser.AclParseException e)
            {
                throw new IOException($"--classify-file {path} line {i + 1}: {e.Message}");
            }
        }
        try
        {
            return Rules.Add(rules).Count;
        }
        catch (ClassifierException e)
        {
            throw new IOException($"--classify-file {path}: {e.Message}");
        }
    }

    public ClassifyDeleteDto Delete(CommandSpec spec, string[] rest)
    {
        if (rest.Length == 1 && rest[0] == "all")
            return new ClassifyDeleteDto(Rules.DeleteAll());
        if (rest.Length == 3 && rest[0] == "all" && rest[1] == "interface")
            return new ClassifyDeleteDto(Rules.DeleteAll(rest[2]));
        if (rest.Length != 1 || !uint.TryParse(rest[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
            throw new ApiException($"usage: {spec.Usage}");
        try
        {
            if (!Rules.Delete(id))
                throw new ApiException($"no classifier rule {id} (show classify)");
        }
        catch (ClassifierException e)
        {
            throw new ApiException(e.Message);
        }
        return new ClassifyDeleteDto(1);
    }

    public List<ClassifyRuleDto> Show(CommandSpec spec, string[] rest)
    {
        string? port = null;
        if (rest.Length == 2 && rest[0] == "interface")
            port = rest[1];
        else if (rest.Length != 0)
            throw new ApiException($"usage: {spec.Usage}");
        if (port is not null)
            _s.PhyPort(port);
        return [.. Rules.Show(port).Select(Dto)];
    }

    public List<ClassifyRuleDto> Clear()
    {
        Rules.ClearCounters();
        return [.. Rules.Show().Select(Dto)];
    }

    public static ClassifyRuleDto Dto(AclRuleState s)
    {
        AclRule r = s.Rule;
        string family = r.V6 ? "ip6" : "ip4";
        return new ClassifyRuleDto(r.Id, r.Port, AclRule.DirectionName(r.Direction),
            r.Src.Length > 0 ? r.Src.ToString() : $"any-{family}", r.Dst.Length > 0 ? r.Dst.ToString() : $"any-{family}",
            r.ProtoName, AclRule.Range(r.SportLo, r.SportHi), AclRule.Range(r.DportLo, r.DportHi),
            AclRule.ActionName(r.Action), r.Priority, s.Packets, s.Bytes, r.Words());
    }

    public void Dispose()
    {
        _s.Pairs.PortRemoved -= Rules.ForgetPort;
        Rules.Dispose();
    }
}
