# The backed pipe's TCP transport on Boost.Asio (docs/aspipe.md). Its
# sources go into the asyncstream library; Asio stays out of the public
# headers.
