//! What extraction minimises over the network's e-graph.

use egg::{CostFunction, Id, Language};

use super::lang::Net;

/// The cost of a network before quantization: layers, weighted by what the
/// integer program pays for them. A batch norm has no integer form, so any
/// fold beats keeping one; a 1x1 depthwise conv is a cheap layer, a conv or
/// linear layer an expensive one, so folding into a layer beats adding a
/// depthwise one. Among parameter expressions, folding into the layer
/// *before* a batch norm is preferred to folding into the one after (the
/// conventional form, and the one simulated folding trains), which also
/// leaves extraction no ties to break.
///
/// `(share x)` costs nothing and does not count `x`: a shared value is paid
/// once, by the layer that computes it, so costs are sums over the
/// unshared regions of the graph and stay small on deep residual networks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetCost;

/// The cost of one node, children excluded.
fn op_cost(enode: &Net) -> u64 {
    match enode {
        Net::Bn(_) | Net::BnFeatures(_) => 1000,
        Net::Conv(_) | Net::Linear(_) => 10,
        Net::Depthwise(_) => 4,
        Net::Add(_) | Net::Gap(_) | Net::Relu(_) | Net::Requant(_) | Net::Op(_) => 1,
        Net::InScaleW(_) | Net::InShiftB(_) => 1,
        Net::Share(_)
        | Net::Zero
        | Net::Ones
        | Net::FoldW(_)
        | Net::FoldB(_)
        | Net::ScaleB(_)
        | Net::Symbol(_) => 0,
    }
}

impl CostFunction<Net> for NetCost {
    type Cost = u64;

    fn cost<C>(&mut self, enode: &Net, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        if let Net::Share(_) = enode {
            return 0;
        }
        enode.fold(op_cost(enode), |sum, id| sum.saturating_add(costs(id)))
    }
}
