using System.Text;
using LinuxCp.ControlPlane.Netlink;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Policy rules (RTM_NEWRULE/DELRULE). A rule that sends everything arriving on one
/// interface to a table (<c>ip rule add iif lcp1 lookup 100</c>) binds that mirror's port to the
/// table, as a VRF would; the lowest priority wins. Linux's default rules and the l3mdev rule
/// are understood; any other rule (by source, mark, ...) cannot be applied by the dataplane and
/// is reported once.</summary>
public sealed class RuleHandler : INetlinkHandler<RuleMsg>
{
    public readonly record struct Rule(bool V6, uint Priority, byte Action, uint Table, string IifName, bool Other, bool L3mdev);

    private readonly NamespaceSync _ns;
    private readonly Dictionary<Rule, byte> _rules = [];
    private readonly HashSet<Rule> _reported = [];

    internal RuleHandler(NamespaceSync ns) => _ns = ns;

    public int Count => _rules.Count;

    /// <summary>Rules the dataplane cannot apply (it forwards by the port's table regardless).</summary>
    public IEnumerable<Rule> Unsupported => _rules.Keys.Where(r => !Understood(r));

    private static bool Understood(Rule r)
    {
        if (r.L3mdev)
            return true;
        if (r.Other || r.Action != Nl.FrActToTbl)
            return false;
        if (r.IifName.Length != 0)
            return true;
        // Linux's defaults: local (0), main (32766), default (32767).
        return (r.Priority == 0 && r.Table == Nl.TableLocal) || (r.Priority == 32766 && r.Table == Nl.TableMain)
            || (r.Priority == 32767 && r.Table == Nl.TableDefault);
    }

    /// <summary>The table a mirror is sent to by an input-interface rule (lowest priority of
    /// either family), or null.</summary>
    public uint? TableFor(string ifname)
    {
        Rule? best = null;
        foreach (Rule r in _rules.Keys)
            if (r.IifName == ifname && !r.Other && r.Action == Nl.FrActToTbl && r.Table != Nl.TableMain && (best is null || r.Priority < best.Value.Priority))
                best = r;
        return best?.Table;
    }

    private static Rule KeyOf(in RuleMsg m) =>
        new(m.V6, m.Priority, m.Action, m.Table, m.IifName.IsEmpty ? "" : Encoding.UTF8.GetString(m.IifName), m.HasOtherSelectors, m.L3mdev);

    public void Add(in RuleMsg m)
    {
        Rule r = KeyOf(m);
        bool known = _rules.ContainsKey(r);
        _rules[r] = _ns.Epoch;
        if (known)
            return;
        if (r.IifName.Length != 0)
            _ns.BindingsChanged();
        if (!Understood(r) && _reported.Add(r))
            _ns.Warn?.Invoke($"netns {_ns.Netns ?? "default"}: policy rule {Describe(r)} selects more than the input interface: the dataplane does not apply it (it forwards in each port's table)");
    }

    public void Delete(in RuleMsg m)
    {
        Rule r = KeyOf(m);
        if (_rules.Remove(r) && r.IifName.Length != 0)
            _ns.BindingsChanged();
        _reported.Remove(r);
    }

    public static string Describe(Rule r) =>
        $"{r.Priority}: {(r.V6 ? "inet6 " : "")}{(r.IifName.Length != 0 ? $"iif {r.IifName} " : "")}{(r.Other ? "(more selectors) " : "")}{(r.L3mdev ? "l3mdev" : $"lookup {r.Table}")}";

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        var stale = _rules.Where(kv => kv.Value != _ns.Epoch).Select(kv => kv.Key).ToList();
        foreach (Rule r in stale)
        {
            _rules.Remove(r);
            _reported.Remove(r);
            if (r.IifName.Length != 0)
                _ns.BindingsChanged();
        }
        return stale.Count;
    }
}
