"""Train the XOR network of the lecture notes (2-2-1 ReLU, MSE) with distnn's engine."""
import numpy as np

import distnn as dn
import distnn.functional as F


def main():
    X = dn.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = dn.tensor([[0.0], [1.0], [1.0], [0.0]])
    rng = np.random.default_rng(3)
    W1 = dn.tensor(rng.normal(0, 1, (2, 8)), dtype=np.float32, requires_grad=True)
    b1 = dn.zeros(8, requires_grad=True)
    W2 = dn.tensor(rng.normal(0, 0.5, (8, 1)), dtype=np.float32, requires_grad=True)
    b2 = dn.zeros(1, requires_grad=True)
    params = [W1, b1, W2, b2]
    for step in range(501):
        out = F.relu(X @ W1 + b1) @ W2 + b2
        loss = F.mse_loss(out, y)
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss.item():.6f}")
    preds = (F.relu(X @ W1 + b1) @ W2 + b2).numpy().ravel()
    for xi, p in zip(X.numpy(), preds):
        print(f"XOR({int(xi[0])}, {int(xi[1])}) -> {p:.3f}")


if __name__ == "__main__":
    main()
