"""Names for captured operations: the operator's, and the layer's from the module that made it."""

from __future__ import annotations


def in_place(target) -> bool:
    """Whether an operator writes into its input (``relu_``)."""
    name = getattr(getattr(target, "overloadpacket", None), "__name__", "")
    return name.endswith("_") and not name.endswith("__")


def op_name(target) -> str:
    """An operator's name without its overload or in-place mark: ``relu`` for ``aten.relu_.default``."""
    name = getattr(getattr(target, "overloadpacket", None), "__name__", None) or getattr(target, "__name__", str(target))
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


class Namer:
    """Layer names and paths from the module stack torch.export records on every node."""

    def __init__(self, module, graph) -> None:
        self.module = module
        self.counts: dict[str, list] = {}
        self.used: dict[str, int] = {}
        for node in graph.nodes:
            if node.op == "call_function":
                self.counts.setdefault(self._owner(node), []).append(op_name(node.target))

    @staticmethod
    def _stack(node) -> list[str]:
        stack = node.meta.get("nn_module_stack") or {}
        return [fqn for fqn, _ in stack.values() if fqn]

    def _owner(self, node) -> str:
        stack = self._stack(node)
        return stack[-1] if stack else ""

    def module_of(self, node) -> str:
        """The name of the module whose forward made ``node`` ("" for the model's own)."""
        return self._owner(node)

    def _is_leaf(self, fqn: str) -> bool:
        if not fqn:
            return False
        try:
            return not any(True for _ in self.module.get_submodule(fqn).children())
        except AttributeError:
            return False

    def _single(self, fqn: str) -> bool:
        ops = self.counts.get(fqn, [])
        return self._is_leaf(fqn) and len(set(ops)) == 1

    def name(self, node) -> str:
        owner, op = self._owner(node), op_name(node.target)
        base = owner if self._single(owner) else (f"{owner}.{op}" if owner else op)
        count = self.used.get(base, 0)
        self.used[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def path(self, node) -> tuple[str, ...]:
        stack = self._stack(node)
        if stack and self._single(stack[-1]):
            stack = stack[:-1]
        return tuple(stack)
