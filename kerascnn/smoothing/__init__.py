"""Certified robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): the
smoothed classifier g(x) = the class the base model most often predicts for x + N(0, sigma^2 I),
its Monte-Carlo CERTIFY (a class and an L2 radius that hold with probability 1 - alpha) and PREDICT
(a class or an abstention)."""
