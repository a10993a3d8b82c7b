namespace LinuxCp.Dataplane.Features;

/// <summary>What the workers read for the interface features: per port, the input and output
/// classifier rules (null: no rules, the port pays one load and a null check per burst), and the
/// punt policers' settings. Immutable; the control plane builds a new one beside it and
/// publishes it like the FIB.</summary>
public sealed class FeatureSnapshot
{
    public static readonly FeatureSnapshot None = new(new AclPortRules?[Interfaces.Max], new AclPortRules?[Interfaces.Max], PuntPolicers.Off, FlowSettings.Off);

    /// <summary>Indexed by port id.</summary>
    public readonly AclPortRules?[] Input, Output;

    public readonly PuntPolicers Policers;

    public readonly FlowSettings Flows;

    public FeatureSnapshot(AclPortRules?[] input, AclPortRules?[] output, PuntPolicers policers, FlowSettings flows)
    {
        Policers = policers;
        Flows = flows;
        if (input.Length != Interfaces.Max || output.Length != Interfaces.Max)
            throw new ArgumentException("a feature snapshot has one slot per port");
        Input = input;
        Output = output;
    }

    public AclPortRules?[] Of(AclDirection d) => d == AclDirection.Input ? Input : Output;

    public FeatureSnapshot With(PuntPolicers p) => new(Input, Output, p, Flows);

    public FeatureSnapshot With(FlowSettings f) => new(Input, Output, Policers, f);

    public FeatureSnapshot With(AclPortRules?[] input, AclPortRules?[] output) => new(input, output, Policers, Flows);
}
