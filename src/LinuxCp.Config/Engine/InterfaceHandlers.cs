using System.Text.Json.Nodes;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;

namespace LinuxCp.Config.Engine;

/// <summary>Checks shared by the kinds.</summary>
internal static class Check
{
    public static bool IfName(string s) =>
        s.Length is > 0 and <= 15 && s is not ("." or "..") && s.All(c => c > ' ' && c < 0x7f && c is not ('/' or ':'));

    public static void Namespace(NamespaceRef? ns, string path, List<ConfigError> errors)
    {
        if (ns is null)
            return;
        string p = path + ".namespace.reference";
        switch (ns.Type)
        {
            case NamespaceType.Undefined when ns.Reference.Length != 0:
                errors.Add(new(path + ".namespace.type", "required with a reference (NSID, PID, FD or MICROSERVICE)"));
                break;
            case NamespaceType.Nsid when !DpdkSharp.Netns.IsValidName(ns.Reference):
                errors.Add(new(p, $"not a namespace name: '{ns.Reference}'"));
                break;
            case NamespaceType.Pid when !uint.TryParse(ns.Reference, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out uint pid) || pid == 0:
                errors.Add(new(p, $"not a process id: '{ns.Reference}'"));
                break;
            case NamespaceType.Fd when !ns.Reference.StartsWith('/'):
                errors.Add(new(p, $"not an absolute path to a namespace file: '{ns.Reference}'"));
                break;
            case NamespaceType.Microservice when ns.Reference.Length == 0:
                errors.Add(new(p, "a microservice label is required"));
                break;
        }
    }

    public static bool Gone(LinuxException e) => e.NotFound || e.Errno == 99; // EADDRNOTAVAIL

    public static string NsName(string ns) => ns.Length == 0 ? "lcpd's namespace" : ns;
}

/// <summary>Linux interfaces: VETH ends, the mirrors of pairs (TAP_TO_VPP), adopted links
/// (EXISTING, LOOPBACK), VRF and dummy devices. Addresses, admin state and VRF membership are
/// derived values with their own handlers.</summary>
internal sealed class InterfaceHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
        var i = (LinuxInterface)item.Value;
        if (i.Name.Length == 0 || i.Name.Contains('/', StringComparison.Ordinal))
            errors.Add(new(path + ".name", i.Name.Length == 0 ? "required" : "must not contain '/'"));
        if (i.Type == InterfaceType.Undefined)
            errors.Add(new(path + ".type", "required (VETH, TAP_TO_VPP, LOOPBACK, EXISTING, VRF_DEVICE or DUMMY)"));
        if (!Check.IfName(i.LinuxName))
            errors.Add(new(path + (i.HostIfName.Length != 0 ? ".host_if_name" : ".name"), $"not a Linux interface name (1-15 characters, no '/', ':' or spaces): '{i.LinuxName}'"));
        if (i.Type == InterfaceType.TapToVpp && i.HostIfName.Length != 0 && i.Tap is { } tap && tap.VppTapIfName.Length != 0 && i.HostIfName != tap.VppTapIfName)
            errors.Add(new(path + ".host_if_name", $"renaming a pair's mirror ({tap.VppTapIfName}) is not supported: create the pair with the name wanted"));
        Check.Namespace(i.Namespace, path, errors);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int k = 0; k < i.IpAddresses.Count; k++)
        {
            string a = i.IpAddresses[k];
            if (!Ip.TryInterfacePrefix(a, out _))
                errors.Add(new($"{path}.ip_addresses[{k}]", $"not an address with a prefix length: '{a}'"));
            else if (!seen.Add(Ip.Canonical(a)))
                errors.Add(new($"{path}.ip_addresses[{k}]", $"{a} is given twice"));
        }
        if (i.PhysAddress.Length != 0 && (!Mac.TryParse(i.PhysAddress, out ulong mac) || !Mac.IsUnicast(mac)))
            errors.Add(new(path + ".phys_address", $"not a unicast MAC address: '{i.PhysAddress}'"));
        if (i.Mtu != 0 && (i.Mtu < 68 || i.Mtu > 65535))
            errors.Add(new(path + ".mtu", $"{i.Mtu} is outside 68-65535"));
        if (i.Type != InterfaceType.Veth && i.Veth is not null)
            errors.Add(new(path + ".veth", $"only for VETH interfaces (this one is {DocumentReader.ProtoName(i.Type)})"));
        if (i.Type != InterfaceType.TapToVpp && i.Tap is not null)
            errors.Add(new(path + ".tap", "only for TAP_TO_VPP interfaces"));
        if (i.Type != InterfaceType.VrfDevice && i.VrfDev is not null)
            errors.Add(new(path + ".vrf_dev", "only for VRF_DEVICE interfaces"));
        switch (i.Type)
        {
            case InterfaceType.Veth when i.Veth is null || !Check.IfName(i.Veth.PeerIfName):
                errors.Add(new(path + ".veth.peer_if_name", "required: the logical name of the other end"));
                break;
            case InterfaceType.Veth when i.Veth.PeerIfName == i.Name:
                errors.Add(new(path + ".veth.peer_if_name", "an interface cannot be its own peer"));
                break;
            case InterfaceType.TapToVpp when i.Tap is null || i.Tap.VppTapIfName.Length == 0:
                errors.Add(new(path + ".tap.vpp_tap_if_name", "required: the host interface of the pair"));
                break;
            case InterfaceType.VrfDevice when i.VrfDev is null || i.VrfDev.RoutingTable == 0 || i.VrfDev.RoutingTable is 253 or 254 or 255:
                errors.Add(new(path + ".vrf_dev.routing_table", "required: a table id other than 0, 253, 254 and 255"));
                break;
            case InterfaceType.VrfDevice when i.IpAddresses.Count != 0 && i.VrfMasterInterface.Length != 0:
                errors.Add(new(path + ".vrf_master_interface", "a VRF device cannot be enslaved"));
                break;
        }
        if (i.VrfMasterInterface == i.Name && i.Name.Length != 0)
            errors.Add(new(path + ".vrf_master_interface", "an interface cannot be its own VRF master"));
        if (i.LinkOnly && i.IpAddresses.Count != 0)
            errors.Add(new(path + ".ip_addresses", "link_only interfaces take no addresses"));
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var i = (LinuxInterface)item.Value;
        yield return new Dep($"namespace {i.Namespace}", External: cx => cx.NamespaceOf(i, out string r) is null ? r : null);
        switch (i.Type)
        {
            case InterfaceType.Veth:
                // Either end creates both: the other end must be applicable, not applied first.
                yield return new Dep($"veth peer {i.Veth!.PeerIfName}", Key: Keys.Interface(i.Veth.PeerIfName), Ordered: false);
                break;
            case InterfaceType.TapToVpp:
                yield return new Dep($"pair with mirror {i.Tap!.VppTapIfName}",
                    External: cx => cx.Pairs?.ByHostIf(i.Tap.VppTapIfName) is null ? $"no pair has the mirror {i.Tap.VppTapIfName}" : null);
                break;
            case InterfaceType.Existing or InterfaceType.Loopback:
            {
                string name = LinuxName(i);
                yield return new Dep($"interface {name}", External: cx =>
                {
                    string? ns = cx.NamespaceOf(i, out string r);
                    if (ns is null)
                        return r;
                    return cx.Link(ns, name) is null ? $"no interface {name} in {Check.NsName(ns)}" : null;
                });
                break;
            }
        }
    }

    /// <summary>The link's name in Linux: host_if_name (or name); a namespace's loopback is lo; a
    /// pair's mirror is found by the pair's host interface (a different host_if_name is a rename).</summary>
    public static string LinuxName(LinuxInterface i) => i.Type switch
    {
        InterfaceType.Loopback when i.HostIfName.Length == 0 => "lo",
        InterfaceType.TapToVpp when i.Tap is { VppTapIfName.Length: > 0 } t => t.VppTapIfName,
        _ => i.LinuxName,
    };

    public IEnumerable<object> Derive(ConfigItem item)
    {
        var i = (LinuxInterface)item.Value;
        if (!i.LinkOnly)
            foreach (string a in i.IpAddresses)
                yield return new InterfaceAddress(i.Name, Ip.Canonical(a));
        yield return new InterfaceAdmin(i.Name, i.Enabled);
        if (i.VrfMasterInterface.Length != 0)
            yield return new VrfMembership(i.Name, i.VrfMasterInterface);
    }

    public bool NeedsRecreate(ConfigItem old, ConfigItem @new)
    {
        var o = (LinuxInterface)old.Value;
        var n = (LinuxInterface)@new.Value;
        return o.Type != n.Type || !NamespaceRef.Same(o.Namespace, n.Namespace) || o.Veth?.PeerIfName != n.Veth?.PeerIfName
            || o.VrfDev != n.VrfDev || o.Tap != n.Tap || (Creates(n.Type) && LinuxName(o) != LinuxName(n));
    }

    /// <summary>Kinds whose link the config layer makes (and deletes).</summary>
    private static bool Creates(InterfaceType t) => t is InterfaceType.Veth or InterfaceType.Dummy or InterfaceType.VrfDevice;

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var i = (LinuxInterface)item.Value;
        if (i.Type == InterfaceType.TapToVpp && i.Namespace is { Type: not NamespaceType.Undefined } target
            && cx.Pairs?.ByHostIf(LinuxName(i)) is { } pair && (target.Type != NamespaceType.Nsid || target.Reference != pair.Netns))
            throw new LinuxException($"{LinuxName(i)}: moving a pair's mirror to another namespace is not supported; declare the pair with that netns instead", 95);
        string ns = cx.NamespaceOrThrow(i);
        string name = LinuxName(i);
        var saved = new JsonObject();
        LinkState? l = cx.Link(ns, name);
        if (Creates(i.Type))
        {
            if (l is not null && !cx.Created.Contains((ns, name)))
                throw new LinuxException($"an interface named {name} already exists in {Check.NsName(ns)} and was not created by lcpd", 17);
            if (l is null)
            {
                if (i.Type == InterfaceType.Veth)
                {
                    LinuxInterface peer = cx.Interface(i.Veth!.PeerIfName) ?? throw new LinuxException($"veth peer {i.Veth.PeerIfName} is not declared", 19);
                    string peerNs = cx.NamespaceOrThrow(peer);
                    if (cx.Link(peerNs, LinuxName(peer)) is not null)
                        throw new LinuxException($"an interface named {LinuxName(peer)} already exists in {Check.NsName(peerNs)}", 17);
                    cx.Linux.CreateVeth(ns, name, peerNs, LinuxName(peer));
                    cx.Created.Add((peerNs, LinuxName(peer)));
                    cx.Touch(peerNs);
                }
                else
                {
                    cx.Linux.CreateLink(ns, name, i.Type == InterfaceType.Dummy ? "dummy" : "vrf", i.VrfDev?.RoutingTable ?? 0);
                }
                cx.Created.Add((ns, name));
                cx.Touch(ns);
                l = cx.Link(ns, name) ?? throw new LinuxException($"{name} was created but is not listed in {Check.NsName(ns)}", 2);
            }
            saved["created"] = true;
        }
        else
        {
            if (l is null)
                throw new LinuxException($"no interface {name} in {Check.NsName(ns)}", 19);
            // What the link was before we touched it: restored on delete.
            saved["mtu"] = l.Mtu;
            saved["mac"] = Mac.Format(l.Mac);
            saved["up"] = l.Up;
        }
        Properties(i, null, ns, l, cx);
        if (i.Type == InterfaceType.Veth && i.Veth is { } v && (!v.RxChecksumOffloading || !v.TxChecksumOffloading))
            cx.Linux.SetOffloads(ns, name, v.RxChecksumOffloading, v.TxChecksumOffloading);
        return saved;
    }

    /// <summary>MTU and MAC as declared (0 / empty: left alone, or put back as saved).</summary>
    private static void Properties(LinuxInterface i, JsonObject? saved, string ns, LinkState l, Ctx cx)
    {
        uint? mtu = i.Mtu != 0 ? i.Mtu : saved?["mtu"]?.GetValue<uint>();
        ulong? mac = i.PhysAddress.Length != 0 ? Mac.Parse(i.PhysAddress)
            : saved?["mac"] is JsonNode m && Mac.TryParse(m.GetValue<string>(), out ulong sm) ? sm : null;
        if (i.LinkOnly)
            return;
        var change = new LinkChange
        {
            Mtu = mtu is uint x && x != l.Mtu ? x : null,
            Mac = mac is ulong y && y != l.Mac ? y : null,
        };
        if (change.Mtu is not null || change.Mac is not null)
        {
            cx.Linux.SetLink(ns, l.Index, change);
            cx.Touch(ns);
        }
    }

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx)
    {
        var o = (LinuxInterface)old.Value;
        var n = (LinuxInterface)@new.Value;
        string ns = cx.NamespaceOrThrow(n);
        LinkState l = cx.Link(ns, LinuxName(o)) ?? cx.Link(ns, LinuxName(n))
            ?? throw new LinuxException($"no interface {LinuxName(o)} in {Check.NsName(ns)}", 19);
        if (l.Name != LinuxName(n))
        {
            if (l.Up)
                cx.Linux.SetLink(ns, l.Index, new LinkChange { Up = false });
            cx.Linux.SetLink(ns, l.Index, new LinkChange { Name = LinuxName(n) });
            if (l.Up)
                cx.Linux.SetLink(ns, l.Index, new LinkChange { Up = true });
            cx.Touch(ns);
            l = cx.Link(ns, LinuxName(n))!;
        }
        Properties(n, Creates(n.Type) ? null : applied.Saved, ns, l, cx);
        if (n.Veth is { } v && v != o.Veth)
            cx.Linux.SetOffloads(ns, LinuxName(n), v.RxChecksumOffloading, v.TxChecksumOffloading);
    }

    public void Delete(Applied applied, Ctx cx)
    {
        var i = (LinuxInterface)applied.Item.Value;
        string? ns = cx.NamespaceOf(i, out _);
        if (ns is null)
            return; // its namespace went away, and the link with it
        LinkState? l;
        try
        {
            l = cx.Link(ns, LinuxName(i));
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
            return;
        }
        if (l is null)
            return;
        if (applied.Saved["created"] is not null)
        {
            try
            {
                cx.Linux.DeleteLink(ns, l.Index);
            }
            catch (LinuxException e) when (Check.Gone(e))
            {
            }
            cx.Touch(ns);
            if (i.Veth is { } v && cx.Interface(v.PeerIfName) is { } peer && cx.NamespaceOf(peer, out _) is string pns)
                cx.Touch(pns);
            return;
        }
        // Adopted: put back what was there.
        var change = new LinkChange
        {
            Mtu = applied.Saved["mtu"]?.GetValue<uint>() is uint m && m != l.Mtu ? m : null,
            Mac = applied.Saved["mac"] is JsonNode s && Mac.TryParse(s.GetValue<string>(), out ulong mac) && mac != l.Mac ? mac : null,
        };
        if (change.Mtu is not null || change.Mac is not null)
            cx.Linux.SetLink(ns, l.Index, change);
        cx.Touch(ns);
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var i = (LinuxInterface)item.Value;
        string? ns = cx.NamespaceOf(i, out string reason);
        if (ns is null)
            return reason;
        LinkState? l = cx.Link(ns, LinuxName(i));
        if (l is null)
            return $"no interface {LinuxName(i)} in {Check.NsName(ns)}";
        if (i.Type == InterfaceType.Veth && l.Kind != "veth")
            return $"{l.Name} is a {(l.Kind.Length == 0 ? "device without a kind" : l.Kind)}, not a veth";
        if (i.LinkOnly)
            return null;
        if (i.Mtu != 0 && l.Mtu != i.Mtu)
            return $"{l.Name}: mtu {l.Mtu}, declared {i.Mtu}";
        if (i.PhysAddress.Length != 0 && l.Mac != Mac.Parse(i.PhysAddress))
            return $"{l.Name}: address {Mac.Format(l.Mac)}, declared {i.PhysAddress.ToLowerInvariant()}";
        return null;
    }

    public string? Namespace(ConfigItem item, Ctx cx) => cx.NamespaceOf((LinuxInterface)item.Value, out _);
}

/// <summary>One address of an interface. One that was on the link before is left there on delete.</summary>
internal sealed class AddressHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var a = (InterfaceAddress)item.Value;
        yield return new Dep($"interface {a.Interface}", Key: Keys.Interface(a.Interface));
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var a = (InterfaceAddress)item.Value;
        var (ns, l) = cx.LinkOf(a.Interface);
        if (cx.Addresses(ns, l.Index).Contains(a.Prefix))
            return new JsonObject { ["preexisting"] = true };
        cx.AddAddress(ns, l.Index, a.Prefix);
        return [];
    }

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx)
    {
    }

    public void Delete(Applied applied, Ctx cx)
    {
        if (applied.Saved["preexisting"] is not null)
            return;
        var a = (InterfaceAddress)applied.Item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(a.Interface);
            cx.DeleteAddress(ns, l.Index, a.Prefix);
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var a = (InterfaceAddress)item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(a.Interface);
            return cx.Addresses(ns, l.Index).Contains(a.Prefix) ? null : $"{l.Name} has no address {a.Prefix}";
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
    }

    public string? Namespace(ConfigItem item, Ctx cx) =>
        cx.Interface(((InterfaceAddress)item.Value).Interface) is { } i ? cx.NamespaceOf(i, out _) : null;
}

/// <summary>Admin state (up/down). An adopted link gets its old state back on delete.</summary>
internal sealed class AdminHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var a = (InterfaceAdmin)item.Value;
        yield return new Dep($"interface {a.Interface}", Key: Keys.Interface(a.Interface));
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var a = (InterfaceAdmin)item.Value;
        var (ns, l) = cx.LinkOf(a.Interface);
        var saved = new JsonObject { ["up"] = l.Up };
        if (l.Up != a.Up)
        {
            cx.Linux.SetLink(ns, l.Index, new LinkChange { Up = a.Up });
            cx.Touch(ns);
        }
        return saved;
    }

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx)
    {
        var a = (InterfaceAdmin)@new.Value;
        var (ns, l) = cx.LinkOf(a.Interface);
        if (l.Up != a.Up)
        {
            cx.Linux.SetLink(ns, l.Index, new LinkChange { Up = a.Up });
            cx.Touch(ns);
        }
    }

    public void Delete(Applied applied, Ctx cx)
    {
        var a = (InterfaceAdmin)applied.Item.Value;
        if (applied.Saved["up"]?.GetValue<bool>() is not bool was)
            return;
        try
        {
            var (ns, l) = cx.LinkOf(a.Interface);
            if (l.Up != was)
            {
                cx.Linux.SetLink(ns, l.Index, new LinkChange { Up = was });
                cx.Touch(ns);
            }
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var a = (InterfaceAdmin)item.Value;
        try
        {
            var (_, l) = cx.LinkOf(a.Interface);
            return l.Up == a.Up ? null : $"{l.Name} is {(l.Up ? "up" : "down")}, declared {(a.Up ? "up" : "down")}";
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
    }

    public string? Namespace(ConfigItem item, Ctx cx) =>
        cx.Interface(((InterfaceAdmin)item.Value).Interface) is { } i ? cx.NamespaceOf(i, out _) : null;
}

/// <summary>Membership of an interface in a VRF device (IFLA_MASTER).</summary>
internal sealed class VrfMemberHandler : IHandler
{
    public void Validate(ConfigItem item, string path, List<ConfigError> errors)
    {
    }

    public IEnumerable<Dep> Dependencies(ConfigItem item, IReadOnlyDictionary<string, ConfigItem> declared)
    {
        var m = (VrfMembership)item.Value;
        yield return new Dep($"interface {m.Interface}", Key: Keys.Interface(m.Interface));
        yield return new Dep($"VRF device {m.Master}", Key: Keys.Interface(m.Master));
    }

    public JsonObject Create(ConfigItem item, Ctx cx)
    {
        var m = (VrfMembership)item.Value;
        var (ns, l) = cx.LinkOf(m.Interface);
        var (mns, master) = cx.LinkOf(m.Master);
        if (mns != ns)
            throw new LinuxException($"{m.Interface} and its VRF {m.Master} are in different namespaces", 22);
        cx.Linux.SetLink(ns, l.Index, new LinkChange { Master = master.Index });
        cx.Touch(ns);
        return [];
    }

    public void Update(ConfigItem old, ConfigItem @new, Applied applied, Ctx cx)
    {
    }

    public void Delete(Applied applied, Ctx cx)
    {
        var m = (VrfMembership)applied.Item.Value;
        try
        {
            var (ns, l) = cx.LinkOf(m.Interface);
            if (l.Master != 0)
                cx.Linux.SetLink(ns, l.Index, new LinkChange { Master = 0 });
            cx.Touch(ns);
        }
        catch (LinuxException e) when (Check.Gone(e))
        {
        }
    }

    public string? Verify(ConfigItem item, Ctx cx)
    {
        var m = (VrfMembership)item.Value;
        try
        {
            var (_, l) = cx.LinkOf(m.Interface);
            var (_, master) = cx.LinkOf(m.Master);
            return l.Master == master.Index ? null : $"{l.Name} is not enslaved to {master.Name}";
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
    }

    public string? Namespace(ConfigItem item, Ctx cx) =>
        cx.Interface(((VrfMembership)item.Value).Interface) is { } i ? cx.NamespaceOf(i, out _) : null;
}
