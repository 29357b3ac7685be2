"""volsurf.flows"""
